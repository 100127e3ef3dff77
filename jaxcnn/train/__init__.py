"""Training: state, pure steps, optimizers, losses and the fit loop."""
from jaxcnn.train.fit import check_data_fits_model, evaluate, fit, load_variables, save_run
from jaxcnn.train.losses import masked_mean, softmax_cross_entropy
from jaxcnn.train.optim import make_optimizer, optimizer_names
from jaxcnn.train.state import TrainState, create_state
from jaxcnn.train.steps import eval_step, train_step

__all__ = ["TrainState", "check_data_fits_model", "create_state", "eval_step", "evaluate", "fit",
           "load_variables", "make_optimizer", "masked_mean", "optimizer_names", "save_run",
           "softmax_cross_entropy", "train_step"]
