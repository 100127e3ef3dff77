"""Training: state, pure steps, strategies, optimizers, losses, checkpoints and the fit loop."""
from jaxcnn.train.checkpoint import Checkpoints
from jaxcnn.train.fit import check_data_fits_model, evaluate, fit
from jaxcnn.train.losses import (loss_names, make_loss, masked_mean, softmax_cross_entropy,
                                 total_error)
from jaxcnn.train.optim import make_optimizer, make_schedule, optimizer_names, schedule_names
from jaxcnn.train.parallel import STRATEGIES, Parallel, initialize_distributed, make_parallel
from jaxcnn.train.preemption import Preempted
from jaxcnn.train.recipe import train_config
from jaxcnn.train.state import TrainState, create_state
from jaxcnn.train.steps import eval_step, train_step

__all__ = ["Checkpoints", "Parallel", "Preempted", "STRATEGIES", "TrainState",
           "check_data_fits_model", "create_state", "eval_step", "evaluate", "fit",
           "initialize_distributed", "loss_names", "make_loss",
           "make_optimizer", "make_parallel", "make_schedule", "masked_mean",
           "optimizer_names", "schedule_names", "softmax_cross_entropy",
           "total_error", "train_config", "train_step"]
