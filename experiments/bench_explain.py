"""Images/s of integrated gradients and occlusion: jaxcnn against captum, one run.

On the benchmark workloads cnn4 (64x64 RGB) and resnet18_cifar (32x32 RGB), the same
architectures in both frameworks (`jaxcnn.bench.torch_baseline` builds the torch ones;
each has its own random weights: speed does not depend on their values), over a batch of
`--images` random images: integrated gradients with 32 steps (Gauss-Legendre, black
baseline) and occlusion with an 8x8 window (all channels) and stride 4. jaxcnn is timed
after one call that compiles (the compile time is printed too); captum gets batched
evaluation (`internal_batch_size`, `perturbations_per_eval`) as a user tuning it would.
Needs torch and captum (`pip install torch==2.13.0 captum`); without them only jaxcnn runs.

Usage: python experiments/bench_explain.py [--images 64] [--workloads cnn4 resnet18]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from jaxcnn import models, viz
from jaxcnn.bench.workloads import WORKLOADS
from jaxcnn.viz.perturbation import window_masks

IG_STEPS = 32
WINDOW, STRIDE = 8, 4


def _chunk(count: int, most: int) -> int:
    """The largest divisor of `count` up to `most`: chunks without padding windows."""
    return max(d for d in range(1, most + 1) if count % d == 0)


def timed(call) -> float:
    """Seconds of one call, its result waited for."""
    start = time.perf_counter()
    jax.block_until_ready(call())
    return time.perf_counter() - start


def jaxcnn_rates(name: str, images: np.ndarray) -> dict[str, tuple[float, float]]:
    """{method: (images/s, compile + first call seconds)} of jaxcnn."""
    spec = WORKLOADS[name]
    model = models.create(spec.model, **spec.fields)
    variables = model.init(jax.random.key(0), images[:1])
    masks = window_masks(images.shape[1:3], (WINDOW, WINDOW), (STRIDE, STRIDE))
    calls = {
        "integrated gradients": lambda: viz.integrated_gradients(
            model, variables, images, 0, steps=IG_STEPS, chunk=8).attributions,
        "occlusion": lambda: viz.occlusion(model, variables, images, 0, window=WINDOW,
                                           stride=STRIDE, chunk=_chunk(len(masks), 16)),
    }
    rates = {}
    for method, call in calls.items():
        first = timed(call)
        rates[method] = (len(images) / timed(call), first)
    return rates


def captum_rates(name: str, images: np.ndarray) -> dict[str, float] | None:
    """{method: images/s} of captum, or None without torch and captum."""
    try:
        import torch
        from captum.attr import IntegratedGradients, Occlusion
        from jaxcnn.bench import torch_baseline
    except ImportError:
        return None
    spec = WORKLOADS[name]
    net = torch_baseline.MODELS[name](spec.num_classes).eval()
    x = torch.tensor(images.transpose(0, 3, 1, 2))
    channels = x.shape[1]
    calls = {
        "integrated gradients": lambda: IntegratedGradients(net).attribute(
            x, target=0, n_steps=IG_STEPS, internal_batch_size=8 * len(x)),
        "occlusion": lambda: Occlusion(net).attribute(
            x, sliding_window_shapes=(channels, WINDOW, WINDOW),
            strides=(channels, STRIDE, STRIDE), target=0, perturbations_per_eval=16),
    }
    rates = {}
    for method, call in calls.items():
        call()  # warm-up: allocator, thread pool
        start = time.perf_counter()
        call()
        rates[method] = len(images) / (time.perf_counter() - start)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--workloads", nargs="+", default=["cnn4", "resnet18"])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{jax.devices()[0].device_kind}; {args.images} images, IG {IG_STEPS} steps, "
          f"occlusion {WINDOW}x{WINDOW} stride {STRIDE}")
    print(f"{'workload':10s} {'method':22s} {'jaxcnn img/s':>13s} {'captum img/s':>13s} "
          f"{'ratio':>6s} {'jaxcnn compile+1st s':>21s}")
    for name in args.workloads:
        shape = WORKLOADS[name].fields["input_shape"]
        images = np.random.default_rng(0).uniform(size=(args.images, *shape)).astype(np.float32)
        ours = jaxcnn_rates(name, images)
        theirs = captum_rates(name, images)
        for method, (rate, first) in ours.items():
            other = theirs[method] if theirs else None
            ratio = f"{rate / other:6.2f}" if other else "     -"
            other_text = f"{other:13.1f}" if other else f"{'not installed':>13s}"
            print(f"{name:10s} {method:22s} {rate:13.1f} {other_text} {ratio} {first:21.1f}")


if __name__ == "__main__":
    main()
