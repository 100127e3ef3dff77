"""Stopping cleanly on SIGTERM (a preempted TPU VM or cluster job) or SIGINT (Ctrl-C).

Contract: inside `with PreemptionWatch() as watch:`, `watch.requested(step)` turns True
once SIGTERM or SIGINT has arrived (`watch.signal_name` says which); the loop then saves a
checkpoint and raises `Preempted`. A second Ctrl-C stops at once (KeyboardInterrupt). In a
multi-process run JAX's preemption service (started by `jax.distributed.initialize`)
catches SIGTERM and makes every process answer True at the same step, so all of them join
the collective save. The previous handlers are restored on exit.
"""
from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils


class Preempted(Exception):
    """The run stopped on SIGTERM or SIGINT after saving a checkpoint; rerun to continue.

    Attributes:
      step: the step of the saved checkpoint.
      directory: where the checkpoints are.
      signal_name: "SIGTERM" or "SIGINT".
    """

    def __init__(self, step: int, directory, signal_name: str = "SIGTERM"):
        super().__init__(f"stopped by {signal_name} at step {step}; the checkpoint is saved in "
                         f"{directory}; run the same command again to continue.")
        self.step = step
        self.directory = directory
        self.signal_name = signal_name


class PreemptionWatch:
    """Notes SIGTERM during a run.

    Args:
      enabled: watch at all (a run without checkpoints has nothing to save).
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.signal_name = "SIGTERM"
        self._signalled = threading.Event()
        self._previous = {}

    def __enter__(self) -> "PreemptionWatch":
        single = jax.process_count() == 1
        # Python handlers can only be installed from the main thread.
        if self.enabled and single and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self._signalled.is_set():
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, without the checkpoint
        self.signal_name = signal.Signals(signum).name
        self._signalled.set()

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def requested(self, step: int) -> bool:
        """Whether the run should stop after `step` (the same answer on every process)."""
        if not self.enabled:
            return False
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._signalled.is_set()
