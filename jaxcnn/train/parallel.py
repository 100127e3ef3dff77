"""One pure train step, three compilations: "jit", "pmap" and "sharded".

Contract: `make_parallel(strategy, loss_fn)` returns a `Parallel` whose methods put a
state and global batches where its compiled steps expect them:

- "jit": `jax.jit` on one device.
- "pmap": `jax.pmap` over this process's devices with axis name "batch": the state is
  replicated (a leading device axis), each device takes an equal slice of the batch,
  gradients and metrics are averaged with `lax.pmean`; models with an `axis_name` field
  get `axis_name="batch"` (see `model_for`) so BatchNorm statistics and dropout rows
  follow the global batch.
- "sharded": `jax.jit` over a `Mesh` of every device of every process with one axis
  "data": batches split along it, the state replicated, its buffers donated. This is the
  strategy for multi-process runs: each process passes only its own rows of each global
  batch, assembled with `jax.make_array_from_process_local_data`.

"jit" and "sharded" compile with `jaxcnn.compiler.compiler_options()` (`jax.pmap` takes
no compiler options, so "pmap" compiles with XLA's defaults).

Every strategy gives the same parameters as "jit" on one device up to float rounding.
`state_for_checkpoint` returns one copy of the state, replicated the same way whatever
the strategy, so checkpoints written by one strategy resume under another.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn import compiler
from jaxcnn.data.batching import shard_batch, shard_for_pmap
from jaxcnn.train.losses import LossFn
from jaxcnn.train.state import TrainState
from jaxcnn.train.steps import Augment, eval_step, train_step

STRATEGIES = ("jit", "pmap", "sharded")
PMAP_AXIS = "batch"
DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Joins a multi-process run (`jax.distributed.initialize`), call before any JAX work.

    On TPU pods and SLURM/GPU clusters the arguments are found by JAX itself; for a CPU
    rehearsal on one machine pass them all (processes then talk over gloo).

    Args:
      coordinator_address: "host:port" of process 0.
      num_processes: number of processes.
      process_id: this process's index in [0, num_processes).
    """
    if coordinator_address is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


@dataclasses.dataclass(frozen=True)
class Parallel:
    """A strategy with its compiled steps and the placement of states and batches.

    Attributes:
      strategy: one of `STRATEGIES`.
      num_devices: devices one global batch is split over.
      train_fn: compiled `(state, batch) -> (state, metrics)`.
      eval_fn: compiled `(state, batch) -> metric sums`.
      mesh: the devices as a mesh ("pmap": this process's, axis "batch"; "sharded": all
        processes', axis "data"); None for "jit".
    """

    strategy: str
    num_devices: int
    train_fn: Callable
    eval_fn: Callable
    mesh: Mesh | None = None

    def check_batch_size(self, batch_size: int, name: str = "batch_size") -> None:
        """Refuses a global batch that does not split evenly over the devices."""
        if batch_size % self.num_devices:
            below = max(batch_size // self.num_devices, 1) * self.num_devices
            raise ValueError(
                f"{name}={batch_size} does not split over the {self.num_devices} devices of "
                f"strategy {self.strategy!r}; use a multiple of {self.num_devices} (e.g. "
                f"{below} or {below + self.num_devices}), or strategy 'jit' for one device.")

    def model_for(self, model: nn.Module) -> nn.Module:
        """The model as this strategy runs it (pmap names the device axis for BatchNorm)."""
        if self.strategy == "pmap" and "axis_name" in {f.name for f in dataclasses.fields(model)}:
            return model.clone(axis_name=PMAP_AXIS)
        return model

    def place_state(self, state: TrainState) -> TrainState:
        """Puts a state (as made by `create_state` or restored) where the steps want it."""
        if self.strategy == "jit":
            # committed to one device, fresh or restored alike, so both compile the same
            return jax.device_put(state, jax.local_devices()[0])
        if self.strategy == "pmap":
            n = self.num_devices
            stacked = jax.tree.map(lambda x: jnp.stack([x] * n), state)
            return jax.device_put(stacked, NamedSharding(self.mesh, PartitionSpec(PMAP_AXIS)))
        return jax.tree.map(functools.partial(_replicate, sharding=self.replicated), state)

    def state_for_checkpoint(self, state: TrainState) -> TrainState:
        """One copy of a placed state (pmap keeps a copy per device)."""
        return jax.tree.map(lambda x: x[0], state) if self.strategy == "pmap" else state

    @property
    def replicated(self) -> NamedSharding | None:
        """Sharding of a replicated value on this strategy's mesh (None for "jit")."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec())

    def place_batch(self, batch: dict[str, np.ndarray]) -> dict:
        """Puts this process's host batch on the devices.

        `batches()` yields the whole global batch in a one-process run and only this
        process's contiguous rows of it in a multi-process run; sharded jit assembles the
        global array from those rows.
        """
        if self.strategy == "jit":
            return batch
        if self.strategy == "pmap":
            return shard_for_pmap(batch, self.num_devices)
        return shard_batch(batch, NamedSharding(self.mesh, PartitionSpec(DATA_AXIS)))

    def metrics(self, metrics: dict) -> dict:
        """Step metrics as scalars (pmap returns one identical copy per device)."""
        return jax.tree.map(lambda x: x[0], metrics) if self.strategy == "pmap" else metrics


def _replicate(value: jax.Array, sharding: NamedSharding) -> jax.Array:
    """A copy of `value` on every device of `sharding`, every process passing the same value."""
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        data = _replicate(jax.random.key_data(value), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(value))
    return jax.make_array_from_process_local_data(sharding, np.asarray(value))


def make_parallel(strategy: str, loss_fn: LossFn, augment: Augment | None = None,
                  freeze: str | None = None) -> Parallel:
    """Compiles `train_step` and `eval_step` for a strategy.

    Equal arguments return the same `Parallel` (within a process count), so the steps
    compiled by one run are reused by the next (notebooks, tests, sweeps).

    Args:
      strategy: "jit", "pmap" or "sharded".
      loss_fn: the per-example loss, bound into the steps.
      augment: training-image augmentation bound into the train step (see `train_step`);
        must be hashable (the `jaxcnn.data.augment` classes are).
      freeze: BatchNorm statistics whose paths this regular expression matches are kept
        (see `jaxcnn.train.freeze`); None: all are updated.

    Returns:
      The `Parallel` for that strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if strategy != "sharded" and jax.process_count() > 1:
        raise ValueError(f"strategy {strategy!r} runs within one process, but this run has "
                         f"{jax.process_count()} processes; use strategy 'sharded'.")
    return _compile(strategy, loss_fn, augment, freeze, jax.process_count())


@functools.lru_cache(maxsize=None)
def _compile(strategy: str, loss_fn: LossFn, augment: Augment | None, freeze: str | None,
             process_count: int) -> Parallel:
    """The `Parallel` of `make_parallel` (process_count keys the cache on the topology)."""
    train = functools.partial(train_step, loss_fn=loss_fn, augment=augment, freeze=freeze)
    evaluate = functools.partial(eval_step, loss_fn=loss_fn)
    if strategy == "jit":
        return Parallel(strategy, 1, compiler.jit(train, donate_argnums=0), compiler.jit(evaluate))
    if strategy == "pmap":
        mesh = Mesh(np.array(jax.local_devices()), (PMAP_AXIS,))
        train = functools.partial(train, axis_name=PMAP_AXIS)
        evaluate = functools.partial(evaluate, axis_name=PMAP_AXIS)
        return Parallel(strategy, jax.local_device_count(),
                        jax.pmap(train, axis_name=PMAP_AXIS, donate_argnums=0),
                        jax.pmap(evaluate, axis_name=PMAP_AXIS), mesh)
    mesh = Mesh(np.array(jax.devices()), (DATA_AXIS,))
    replicated = NamedSharding(mesh, PartitionSpec())
    data = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return Parallel(strategy, jax.device_count(),
                    compiler.jit(train, in_shardings=(replicated, data),
                                 out_shardings=(replicated, replicated), donate_argnums=0),
                    compiler.jit(evaluate, in_shardings=(replicated, data),
                                 out_shardings=replicated),
                    mesh)
