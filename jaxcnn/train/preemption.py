"""Stopping cleanly on SIGTERM, the signal a preempted TPU VM or cluster job receives.

Contract: inside `with PreemptionWatch() as watch:`, `watch.requested(step)` turns True
once SIGTERM has arrived; the loop then saves a checkpoint and raises `Preempted`. In a
multi-process run JAX's preemption service (started by `jax.distributed.initialize`)
catches the signal and makes every process answer True at the same step, so all of them
join the collective save. The previous SIGTERM handler is restored on exit.
"""
from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils


class Preempted(Exception):
    """The run stopped on SIGTERM after saving a checkpoint; resume to continue.

    Attributes:
      step: the step of the saved checkpoint.
      directory: where the checkpoints are.
    """

    def __init__(self, step: int, directory):
        super().__init__(f"stopped by SIGTERM at step {step}; the checkpoint is saved in "
                         f"{directory}; run again with resume=True (--resume) to continue.")
        self.step = step
        self.directory = directory


class PreemptionWatch:
    """Notes SIGTERM during a run.

    Args:
      enabled: watch at all (a run without checkpoints has nothing to save).
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._signalled = threading.Event()
        self._previous = None

    def __enter__(self) -> "PreemptionWatch":
        single = jax.process_count() == 1
        # Python handlers can only be installed from the main thread.
        if self.enabled and single and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self._signalled.set())
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def requested(self, step: int) -> bool:
        """Whether the run should stop after `step` (the same answer on every process)."""
        if not self.enabled:
            return False
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._signalled.is_set()
