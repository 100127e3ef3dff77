"""Plain Flax linen baseline of the workloads, written the way a Flax user would.

Contract: the same networks as WORKLOADS.md with `nn.Conv`, `nn.max_pool`, `nn.BatchNorm`,
`optax` SGD with momentum and a `jax.jit` train step (as ../shared/peers/flax_peer.py);
`flax_runner` compiles the step and returns a `Runner`. It uses nothing from jaxcnn but
the workload table, so it measures what jaxcnn's own ops and layers add.
"""
from __future__ import annotations

import functools
import time
from typing import Any

import flax.linen as nn
import jax
import optax

from jaxcnn.bench.runner import Runner
from jaxcnn.bench.workloads import check_precision, check_workload, make_optimizer, random_batch


class LeNet5(nn.Module):
    """conv 6@5x5, pool, conv 16@5x5, pool, dense 120-100-classes."""

    num_classes: int
    dtype: Any

    @nn.compact
    def __call__(self, x, train=True):
        for features in (6, 16):
            x = nn.Conv(features, (5, 5), padding="VALID", dtype=self.dtype)(x)
            x = nn.max_pool(nn.relu(x), (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        for width in (120, 100):
            x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x)


class CNN4(nn.Module):
    """Four [conv 3x3 SAME, relu, pool 2/2] blocks, dense 512, logits."""

    num_classes: int
    dtype: Any

    @nn.compact
    def __call__(self, x, train=True):
        for features in (32, 64, 128, 128):
            x = nn.Conv(features, (3, 3), padding="SAME", dtype=self.dtype)(x)
            x = nn.max_pool(nn.relu(x), (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(512, dtype=self.dtype)(x))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x)


class Block(nn.Module):
    """ResNet basic block with a 1x1 projection shortcut where the shape changes."""

    features: int
    stride: int
    dtype: Any

    @nn.compact
    def __call__(self, x, train=True):
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                                 dtype=self.dtype)
        conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
        y = conv(self.features, (3, 3), (self.stride, self.stride), padding=1)(x)
        y = nn.relu(norm()(y))
        y = norm()(conv(self.features, (3, 3), padding=1)(y))
        if self.stride != 1 or x.shape[-1] != self.features:
            x = norm()(conv(self.features, (1, 1), (self.stride, self.stride))(x))
        return nn.relu(y + x)


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: 3x3 stem, four stages of two blocks, global average pool."""

    num_classes: int
    dtype: Any

    @nn.compact
    def __call__(self, x, train=True):
        x = nn.Conv(64, (3, 3), padding=1, use_bias=False, dtype=self.dtype)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x))
        for i, features in enumerate((64, 128, 256, 512)):
            x = Block(features, 1 if i == 0 else 2, self.dtype)(x, train)
            x = Block(features, 1, self.dtype)(x, train)
        return nn.Dense(self.num_classes, dtype=self.dtype)(x.mean(axis=(1, 2)))


MODELS = {"lenet5": LeNet5, "cnn4": CNN4, "resnet18": ResNet18}


def _step(model, tx, params, stats, opt_state, x, y):
    def loss_fn(p):
        if stats:
            logits, updates = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                          mutable=["batch_stats"])
            new_stats = updates["batch_stats"]
        else:
            logits, new_stats = model.apply({"params": p}, x, train=True), stats
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_stats

    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss


def flax_runner(workload: str, batch: int, precision: str = "float32") -> Runner:
    """Builds and compiles the plain-Flax train step of a workload.

    Args:
      workload: a name from `WORKLOADS`.
      batch: batch size.
      precision: "float32" or "bfloat16" compute dtype.

    Returns:
      The runner.
    """
    spec = check_workload(workload)
    model = MODELS[workload](spec.num_classes, check_precision(precision))
    data = random_batch(workload, batch)
    x, y = data["image"], data["label"]
    variables = model.init(jax.random.key(0), x[:1], train=False)
    tx = make_optimizer()
    params = variables["params"]
    state = [(params, variables.get("batch_stats", {}), tx.init(params))]
    step = jax.jit(functools.partial(_step, model, tx), donate_argnums=(0, 1, 2))
    start = time.perf_counter()
    compiled = step.lower(*state[0], x, y).compile()
    compile_s = time.perf_counter() - start

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            *new_state, loss = compiled(*state[0], x, y)
            state[0] = tuple(new_state)
        loss.block_until_ready()
        return time.perf_counter() - start

    return Runner(compile_s, run)
