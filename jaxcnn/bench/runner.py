"""Timing runners: one compiled train step of a workload, ready to run N steps.

Contract: a `Runner` holds `compile_s` (seconds to trace, lower and compile the step, or 0
for eager frameworks) and `run(steps) -> seconds`, which runs `steps` steps on the same
batch and blocks until they are done. `jaxcnn_runner` builds one from jaxcnn's model
registry and `jaxcnn.train.train_step`, compiled with one of three strategies:
"jit" (one device), "pmap" (the batch split over local devices, `axis_name="batch"`) or
"sharded" (`jax.jit` with the batch sharded over a 1-D mesh of all devices). "jit" and
"sharded" compile with `jaxcnn.compiler.compiler_options()` unless told otherwise.
`enable_compile_cache` turns on JAX's persistent compilation cache.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import time
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn import compiler
from jaxcnn.bench.workloads import build_model, make_optimizer, random_batch
from jaxcnn.train import create_state, train_step

STRATEGIES = ("jit", "pmap", "sharded")


@dataclasses.dataclass
class Runner:
    """A compiled train step and the arguments it runs on.

    Attributes:
      compile_s: seconds spent tracing, lowering and compiling the step.
      run: `run(steps)` runs that many steps and returns the elapsed seconds.
    """

    compile_s: float
    run: Callable[[int], float]


def default_cache_dir() -> pathlib.Path:
    """The persistent compilation cache folder: `$XDG_CACHE_HOME/jaxcnn/jax` (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jaxcnn" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Makes JAX reuse compiled programs across processes.

    Args:
      path: the cache folder; `default_cache_dir()` when None.

    Returns:
      The folder used.
    """
    folder = pathlib.Path(path) if path is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # JAX only caches programs that took >= 1 s to compile by default; small train
    # steps (LeNet-5) compile faster than that but are still worth keeping.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def check_strategy(strategy: str, batch: int) -> list:
    """Checks a strategy name and that the batch splits evenly over its devices.

    Args:
      strategy: one of `STRATEGIES`.
      batch: global batch size.

    Returns:
      The devices the strategy uses.

    Raises:
      ValueError: for an unknown strategy or a batch the devices cannot split.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    devices = jax.local_devices() if strategy == "pmap" else jax.devices()
    if strategy != "jit" and batch % len(devices):
        raise ValueError(f"batch size {batch} cannot be split over {len(devices)} devices with "
                         f"strategy {strategy!r}; use a multiple of {len(devices)}.")
    return devices


def _place(strategy: str, state, batch: dict, compiler_options: dict | None = None):
    """Compiles nothing: wraps `train_step` for the strategy and places its arguments.

    `compiler_options` goes to `jaxcnn.compiler.jit` ("jit" and "sharded"; `jax.pmap`
    takes none).
    """
    devices = check_strategy(strategy, batch["label"].shape[0])
    jit = functools.partial(compiler.jit, compiler_options=compiler_options)
    if strategy == "jit":
        return jit(train_step, donate_argnums=0), state, batch
    if strategy == "pmap":
        n = len(devices)
        step = jax.pmap(functools.partial(train_step, axis_name="batch"), axis_name="batch",
                        donate_argnums=0)
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), state)
        batch = jax.tree.map(lambda x: x.reshape(n, -1, *x.shape[1:]), batch)
        return step, state, batch
    mesh = Mesh(devices, ("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())
    state = jax.device_put(state, replicated)
    batch = jax.device_put(batch, NamedSharding(mesh, PartitionSpec("batch")))
    return jit(train_step, donate_argnums=0, out_shardings=(replicated, replicated)), state, batch


def jaxcnn_runner(workload: str, batch: int, precision: str = "float32",
                  strategy: str = "jit", compiler_options: dict | None = None) -> Runner:
    """Builds and compiles the jaxcnn train step of a workload.

    Args:
      workload: a name from `WORKLOADS`.
      batch: global batch size.
      precision: "float32" or "bfloat16" compute dtype (parameters stay float32).
      strategy: one of `STRATEGIES`.
      compiler_options: XLA options for "jit" and "sharded"; None for
        `jaxcnn.compiler.compiler_options()`, `{}` for XLA's defaults.

    Returns:
      The runner.

    Raises:
      ValueError: for an unknown strategy or a batch the devices cannot split.
    """
    check_strategy(strategy, batch)
    model = build_model(workload, precision, axis_name="batch" if strategy == "pmap" else None)
    state = create_state(model, make_optimizer(), seed=0)
    step, state, data = _place(strategy, state, random_batch(workload, batch), compiler_options)
    start = time.perf_counter()
    compiled = step.lower(state, data).compile()
    compile_s = time.perf_counter() - start
    holder = [state]

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            holder[0], metrics = compiled(holder[0], data)
        jax.block_until_ready(metrics)
        return time.perf_counter() - start

    return Runner(compile_s, run)
