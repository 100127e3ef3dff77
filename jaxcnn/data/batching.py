"""Batch plans and device placement shared by every dataset.

Contract:
- `batch_plan` decides which examples form each batch: shuffled per epoch from
  `(seed, epoch)`, the remainder dropped (training) or the last batch padded with
  `mask == False` rows (evaluation, every example counted exactly once). In a run with
  several JAX processes, every process computes the same global plan and keeps only its
  own contiguous slice of each global batch, so together they read every global batch
  exactly once and all of them take the same number of steps.
- `shard_for_pmap` reshapes a batch to `(devices, per_device, ...)` for `jax.pmap`.
- `shard_batch` turns a process-local batch into global `jax.Array`s laid out by a
  `NamedSharding` (sharded `jax.jit`), multi-host included.
- `prefetch_to_device` moves batches onto the device from a background thread, a few
  batches ahead, so the accelerator does not wait on the host.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

Batch = dict[str, np.ndarray]
JOIN_TIMEOUT_S = 30.0  # longest wait for a prefetch thread to finish its batch


def resolve_process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """Fills in this JAX process's index and the process count where they are None.

    Args:
      process_index: index of this process, or None for `jax.process_index()`.
      process_count: number of processes, or None for `jax.process_count()`.

    Returns:
      `(process_index, process_count)`.
    """
    index = jax.process_index() if process_index is None else int(process_index)
    count = jax.process_count() if process_count is None else int(process_count)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process_index must lie in [0, process_count={count}), got {index}; "
                         "leave both as None to use jax.process_index()/jax.process_count().")
    return index, count


def batch_plan(num_examples: int, batch_size: int, *, shuffle: bool, seed: int, epoch: int,
               drop_remainder: bool, process_index: int = 0, process_count: int = 1,
               name: str = "dataset", start_batch: int = 0
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields `(indices, mask)` of this process's part of every global batch.

    Args:
      num_examples: size of the dataset.
      batch_size: global batch size, summed over processes.
      shuffle: permute the examples, deterministically from `(seed, epoch)`.
      seed: the run's seed.
      epoch: the epoch number; a different epoch gives a different order.
      drop_remainder: drop the last incomplete global batch; otherwise pad it.
      process_index: this process's index.
      process_count: number of processes sharing every global batch.
      name: dataset name for messages.
      start_batch: skip this many batches of the epoch (a run resumed mid-epoch); nothing
        is read for them.

    Returns:
      An iterator of `(indices, mask)`: `indices` (batch_size // process_count,) int64
      example indices (padding rows repeat index 0) and `mask` (same shape) bool, False on
      padding rows.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if batch_size % process_count:
        raise ValueError(
            f"batch_size={batch_size} cannot be split over {process_count} processes; use a "
            f"multiple of {process_count}.")
    if drop_remainder and batch_size > num_examples:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {num_examples} examples of dataset "
            f"'{name}', so no full batch exists; use a batch_size <= {num_examples}.")
    order = np.arange(num_examples)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    local = batch_size // process_count
    stop = num_examples - num_examples % batch_size if drop_remainder else num_examples
    for start in range(start_batch * batch_size, stop, batch_size):
        global_idx = order[start:start + batch_size]
        mask = np.arange(batch_size) < global_idx.shape[0]
        global_idx = np.concatenate([global_idx, np.zeros(batch_size - global_idx.shape[0], int)])
        mine = slice(process_index * local, (process_index + 1) * local)
        yield global_idx[mine], mask[mine]


def count_batches(num_examples: int, batch_size: int, drop_remainder: bool) -> int:
    """How many batches `batch_plan` yields (the same on every process)."""
    return num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)


def shard_for_pmap(batch: Batch, num_devices: int | None = None) -> Batch:
    """Reshapes every array of a batch from `(B, ...)` to `(D, B // D, ...)` for `jax.pmap`.

    Args:
      batch: a batch from `batches()`.
      num_devices: D; defaults to `jax.local_device_count()`.

    Returns:
      The batch with a leading device axis (NumPy arrays; pmap copies them to devices).
    """
    devices = jax.local_device_count() if num_devices is None else int(num_devices)
    size = len(batch["mask"])
    if devices < 1 or size % devices:
        raise ValueError(
            f"a batch of {size} examples cannot be split over {devices} devices; use a "
            f"batch_size that is a multiple of {devices} (per process).")
    return {k: np.reshape(v, (devices, size // devices, *np.shape(v)[1:])) for k, v in batch.items()}


def batch_sharding(mesh: Mesh | None = None, axis_name: str = "batch") -> NamedSharding:
    """A `NamedSharding` that splits the leading (batch) axis over a mesh axis.

    Args:
      mesh: the device mesh; defaults to all devices along one axis named `axis_name`.
      axis_name: the mesh axis the batch is split over.

    Returns:
      `NamedSharding(mesh, PartitionSpec(axis_name))`.
    """
    if mesh is None:
        mesh = jax.make_mesh((jax.device_count(),), (axis_name,))
    if axis_name not in mesh.axis_names:
        raise ValueError(f"axis_name={axis_name!r} is not an axis of the mesh {mesh.axis_names}.")
    return NamedSharding(mesh, PartitionSpec(axis_name))


def shard_batch(batch: Batch, sharding: NamedSharding | None = None) -> dict[str, jax.Array]:
    """Places this process's batch as global arrays split over the devices (sharded jit).

    In a multi-process run, each process passes its own part of the global batch (as
    `batches()` yields it) and gets arrays whose global leading size is the global batch.

    Args:
      batch: a process-local batch from `batches()`.
      sharding: how to lay the batch out; defaults to `batch_sharding()`.

    Returns:
      The batch as `jax.Array`s with that sharding.
    """
    sharding = sharding or batch_sharding()
    local_devices = len(sharding.mesh.local_devices)
    size = len(batch["mask"])
    if size % local_devices:
        raise ValueError(
            f"a batch of {size} examples cannot be split over this process's {local_devices} "
            f"devices; use a batch_size whose per-process part is a multiple of {local_devices}.")
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in batch.items()}


def prefetch_to_device(batches: Iterable[Batch], size: int = 2,
                       put: Callable[[Batch], object] = jax.device_put) -> Iterator:
    """Yields `put(batch)` for every batch, computed `size` batches ahead in a thread.

    Reading, decoding and copying batches runs while the device computes the previous
    step (XLA releases the GIL), so a host pipeline faster than the step never stalls it.

    Args:
      batches: an iterable of host batches.
      size: how many placed batches may wait in the buffer (2 is enough to overlap).
      put: places one batch, e.g. `jax.device_put`, `shard_batch` or
        `lambda b: jax.device_put(shard_for_pmap(b))`.

    Returns:
      An iterator over the placed batches, in order. An exception in the producer is
      re-raised here.
    """
    if size < 1:
        raise ValueError(f"size must be a positive integer, got {size}.")
    buffer: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        """Waits for room in the buffer; gives up when the consumer has gone."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        error = None
        try:
            for batch in batches:
                if not offer((put(batch), None)):
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            error = err
        offer((done, error))

    thread = threading.Thread(target=produce, daemon=True, name="prefetch_to_device")
    thread.start()
    try:
        while True:
            item, err = buffer.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        # Wait for the producer to leave its current batch: a thread still inside a device
        # copy when the interpreter exits (a run stopped by SIGTERM) aborts the process.
        thread.join(timeout=JOIN_TIMEOUT_S)
