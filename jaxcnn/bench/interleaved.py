"""Interleaved timing of jaxcnn and its baselines on one workload.

Contract: `compare` starts one worker process per framework (jaxcnn; with `baselines`
plain Flax always and PyTorch when it is installed), compiles each in turn, warms them
up, then runs `rounds` rounds in which every framework runs the same number of steps,
rotating who goes first. Throughput is the batch divided by the median seconds per step
over the rounds, so load from other processes hits every framework alike. The result is
one flat dict (one JSON line of `jaxcnn bench`).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

import jaxcnn
from jaxcnn.bench.runner import check_strategy
from jaxcnn.bench.workloads import check_precision, check_workload

# Seconds between two timed segments (see `compare`).
SETTLE_S = 0.5


class _Worker:
    """A running `jaxcnn.bench.worker` process."""

    def __init__(self, spec: dict):
        env = dict(os.environ)
        # The worker must import this very copy of jaxcnn (e.g. a source checkout).
        root = str(pathlib.Path(jaxcnn.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.peer = spec["peer"]
        self.proc = subprocess.Popen([sys.executable, "-m", "jaxcnn.bench.worker", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.peer} benchmark worker exited with status "
                               f"{self.proc.wait()}; its error is printed above.")
        return json.loads(line)

    def run(self, steps: int) -> float:
        """Runs `steps` steps in the worker and returns the elapsed seconds."""
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return self._read()["seconds"]

    def close(self) -> None:
        """Ends the worker."""
        self.proc.stdin.close()
        self.proc.wait()


def available_baselines() -> list[str]:
    """The baselines this environment can run: "flax", plus "torch" when it is importable."""
    return ["flax"] + (["torch"] if importlib.util.find_spec("torch") else [])


def compare(workload: str, *, batch: int | None = None, steps: int = 20, rounds: int = 5,
            warmup: int = 3, strategy: str = "jit", precision: str = "float32",
            baselines: bool = False, cache: str | None = "",
            torch_threads: int | None = None, min_round_s: float = 0.5,
            xla_defaults: bool = False) -> dict:
    """Times jaxcnn (and optionally its baselines) on one workload, interleaved.

    Args:
      workload: a name from `WORKLOADS`.
      batch: batch size (the workload's default when None).
      steps: timed steps per framework, split evenly over the rounds (raised so that a
        round lasts at least `min_round_s`).
      rounds: number of interleaved rounds; the median round sets the throughput.
      warmup: untimed steps per framework after compilation.
      strategy: jaxcnn's compile strategy ("jit", "pmap" or "sharded").
      precision: "float32" or "bfloat16".
      baselines: also time plain Flax and, when installed, PyTorch.
      cache: jaxcnn's persistent compilation cache folder ("" = default, None = off).
      torch_threads: PyTorch's intra-op threads (None: its default, one per core). On a
        machine busy with other work, PyTorch's spinning OpenMP threads can slow it
        down by more than 10x; one thread shows what it does per core.
      min_round_s: shortest timed round, in seconds of the fastest framework's warm-up
        steps: a round of a few milliseconds measures thread wake-up, not training.
      xla_defaults: compile jaxcnn's step with XLA's default options instead of
        `jaxcnn.compiler.compiler_options()` (shows what those options bring).

    Returns:
      {workload, batch, img_per_s, step_ms, compile_s, device, jax_version, strategy,
      precision, steps, rounds, xla_defaults, load_avg} plus, per baseline B, `B_img_per_s`,
      `B_compile_s`, `B_version`, `B_device` and the ratio `jaxcnn_over_B`.

    Raises:
      ValueError: for a bad workload, strategy, precision, batch, steps, rounds, warmup or
        torch_threads, or a batch the devices cannot split.
    """
    spec = check_workload(workload)
    check_precision(precision)
    batch = spec.batch if batch is None else batch
    for name, value in (("batch", batch), ("steps", steps), ("rounds", rounds)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}.")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}.")
    if min_round_s < 0:
        raise ValueError(f"min_round_s must be >= 0, got {min_round_s}.")
    if torch_threads is not None and torch_threads < 1:
        raise ValueError(f"torch_threads must be a positive integer or None, got {torch_threads}.")
    check_strategy(strategy, batch)
    peers = ["jaxcnn"] + (available_baselines() if baselines else [])
    workers, warm_step_s = [], []
    try:
        for peer in peers:  # one at a time, so compile times are not disturbed
            workers.append(_Worker({"peer": peer, "workload": workload, "batch": batch,
                                    "precision": precision, "strategy": strategy, "cache": cache,
                                    "torch_threads": torch_threads,
                                    "xla_defaults": xla_defaults}))
            if warmup:
                warm_step_s.append(workers[-1].run(warmup) / warmup)
        fastest = min(warm_step_s, default=0.0)
        per_round = max(1, steps // rounds, math.ceil(min_round_s / fastest) if fastest else 1)
        times = {w.peer: [] for w in workers}
        for r in range(rounds):
            for w in workers[r % len(workers):] + workers[:r % len(workers)]:
                # Let the previous worker's thread pools stop spinning before timing the
                # next: PyTorch's OpenMP and XLA's threads busy-wait after their work.
                time.sleep(SETTLE_S)
                times[w.peer].append(w.run(per_round) / per_round)
    finally:
        for w in workers:
            w.close()
    step_s = {peer: statistics.median(t) for peer, t in times.items()}
    main = workers[0].info
    result = {"workload": workload, "batch": batch, "img_per_s": round(batch / step_s["jaxcnn"], 1),
              "step_ms": round(1e3 * step_s["jaxcnn"], 3), "compile_s": round(main["compile_s"], 3),
              "device": main["device"], "jax_version": main["version"], "strategy": strategy,
              "precision": precision, "steps": per_round * rounds, "rounds": rounds,
              "xla_defaults": xla_defaults, "load_avg": round(os.getloadavg()[0], 2)}
    for w in workers[1:]:
        result[f"{w.peer}_img_per_s"] = round(batch / step_s[w.peer], 1)
        result[f"{w.peer}_compile_s"] = round(w.info["compile_s"], 3)
        result[f"{w.peer}_version"] = w.info["version"]
        result[f"{w.peer}_device"] = w.info["device"]
        result[f"jaxcnn_over_{w.peer}"] = round(step_s[w.peer] / step_s["jaxcnn"], 3)
    return result
