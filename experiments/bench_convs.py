"""Milliseconds per ResNet-18 convolution: forward, input gradient and weight gradient.

Times every distinct convolution of the CIFAR ResNet-18 workload (batch 32) through
`jaxcnn.ops.conv2d`, each direction compiled on its own with `jaxcnn.jit`, and prints one
line per shape and the totals weighted by how often the shape occurs in the network.
`--xla-defaults` compiles with XLA's default options instead of `jaxcnn.compiler`'s, so
two runs (separate processes, as two compiled programs timed in one process disturb each
other) show what the options change:

    python experiments/bench_convs.py
    python experiments/bench_convs.py --xla-defaults
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jaxcnn
from jaxcnn import ops

# (input size, in channels, out channels, kernel, stride, occurrences in ResNet-18)
SHAPES = [
    (32, 3, 64, 3, 1, 1),
    (32, 64, 64, 3, 1, 4),
    (32, 64, 128, 3, 2, 1), (32, 64, 128, 1, 2, 1),
    (16, 128, 128, 3, 1, 3),
    (16, 128, 256, 3, 2, 1), (16, 128, 256, 1, 2, 1),
    (8, 256, 256, 3, 1, 3),
    (8, 256, 512, 3, 2, 1), (8, 256, 512, 1, 2, 1),
    (4, 512, 512, 3, 1, 3),
]


def median_ms(fn, *args, min_s: float = 0.3) -> float:
    """Median milliseconds per call of `fn(*args)` over 5 rounds of at least `min_s` each."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    calls = max(3, int(min_s / max(time.perf_counter() - start, 1e-6)))
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        rounds.append((time.perf_counter() - start) / calls * 1e3)
    return statistics.median(rounds)


def time_shape(size, cin, cout, kernel, stride, batch, options) -> list[float]:
    """[forward, input gradient, weight gradient] milliseconds of one convolution."""
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.uniform(keys[0], (batch, size, size, cin))
    w = jax.random.normal(keys[1], (kernel, kernel, cin, cout)) * 0.05
    conv = lambda x, w: ops.conv2d(x, w, stride=stride, padding="SAME" if kernel > 1 else "VALID")
    dy = jax.random.normal(keys[2], jax.eval_shape(conv, x, w).shape)
    jit = jaxcnn.jit(compiler_options=options)
    forward = jit(conv)
    input_grad = jit(lambda x, w, dy: jax.vjp(lambda x: conv(x, w), x)[1](dy)[0])
    weight_grad = jit(lambda x, w, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0])
    return [median_ms(forward, x, w), median_ms(input_grad, x, w, dy),
            median_ms(weight_grad, x, w, dy)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--xla-defaults", action="store_true",
                   help="compile with XLA's default options, not jaxcnn.compiler's")
    args = p.parse_args()
    options = {} if args.xla_defaults else None
    print(f"options: {'XLA defaults' if args.xla_defaults else jaxcnn.compiler.compiler_options()}")
    print("shape | forward ms | input grad ms | weight grad ms")
    totals = [0.0, 0.0, 0.0]
    for size, cin, cout, kernel, stride, count in SHAPES:
        ms = time_shape(size, cin, cout, kernel, stride, args.batch, options)
        print(f"{size}x{size} {cin}->{cout} {kernel}x{kernel}/{stride} (x{count}) | "
              + " | ".join(f"{m:.2f}" for m in ms), flush=True)
        totals = [t + count * m for t, m in zip(totals, ms)]
    print("total per train step | " + " | ".join(f"{t:.1f}" for t in totals)
          + f" | all: {sum(totals):.1f} ms")


if __name__ == "__main__":
    main()
