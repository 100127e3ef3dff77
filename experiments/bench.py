"""Benchmark report: jaxcnn vs plain Flax vs PyTorch on the WORKLOADS.md workloads.

Prints a markdown report: the machine, the library versions, training images/s of the
three frameworks timed interleaved in the same run (`jaxcnn.bench.compare`), and
inference and input-gradient (the step of gradient-ascent visualizations) images/s of
jaxcnn against plain Flax, also interleaved. jaxcnn's functions are compiled with
`jaxcnn.jit` (XLA options of `jaxcnn.compiler`), Flax's with plain `jax.jit`;
`--xla-defaults` compiles jaxcnn's with XLA's defaults too.

    PYTHONPATH=. python experiments/bench.py --steps 20 --rounds 7 > bench.md
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time

import flax
import jax
import jax.numpy as jnp

import jaxcnn
from jaxcnn import bench
from jaxcnn.bench import flax_baseline


def machine() -> str:
    """Cores, CPU model and load of this machine, in one line."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}; load average {load} (1, 5, 15 min)"


def _time(fn, arg, repeats: int) -> float:
    """Median seconds of `fn(arg)` over `repeats` calls, after one warm-up call."""
    jax.block_until_ready(fn(arg))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_and_input_grad(name: str, repeats: int, xla_defaults: bool = False) -> dict:
    """Images/s of jitted `apply` and of the input gradient of one logit, jaxcnn vs Flax.

    Args:
      name: workload name.
      repeats: timed calls per function (interleaved between the two frameworks).
      xla_defaults: compile jaxcnn's functions with XLA's default options.

    Returns:
      {"jaxcnn_infer", "flax_infer", "jaxcnn_grad", "flax_grad"} in images/s.
    """
    spec = bench.WORKLOADS[name]
    x = bench.random_batch(name, spec.batch)["image"]
    models = {"jaxcnn": bench.build_model(name),
              "flax": flax_baseline.MODELS[name](spec.num_classes, jnp.float32)}
    fns = {}
    jits = {"jaxcnn": jaxcnn.jit(compiler_options={} if xla_defaults else None), "flax": jax.jit}
    for key, model in models.items():
        variables = model.init(jax.random.key(0), x[:1], train=False)
        # Variables are arguments, as in `jax.jit(model.apply)(variables, x)`: closed over,
        # they become constants and XLA may compile a different program (Flax's cnn4 then
        # runs as one YNNPACK graph), which a model whose weights change cannot use.
        infer = jits[key](lambda v, x, m=model: m.apply(v, x, train=False))
        ascent = jits[key](jax.grad(lambda x, v, m=model: m.apply(v, x, train=False)[:, 0].sum()))
        fns[f"{key}_infer"] = functools.partial(infer, variables)
        fns[f"{key}_grad"] = lambda x, f=ascent, v=variables: f(x, v)
    times = {key: [] for key in fns}
    for _ in range(3):  # interleave in rounds so that load hits both alike
        for key, fn in fns.items():
            times[key].append(_time(fn, x, max(1, repeats // 3)))
    return {key: spec.batch / statistics.median(t) for key, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="lenet5,cnn4,resnet18")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per framework")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    p.add_argument("--repeats", type=int, default=9, help="timed calls for inference/gradient")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="PyTorch intra-op threads (default: one per core)")
    p.add_argument("--xla-defaults", action="store_true",
                   help="compile jaxcnn with XLA's default options (see jaxcnn.compiler)")
    args = p.parse_args()
    names = args.workloads.split(",")
    print(f"Machine: {machine()}  ")
    print(f"Versions: jaxcnn {jaxcnn.__version__}, jax {jax.__version__}, flax {flax.__version__}"
          + (f", torch {__import__('torch').__version__}" if "torch" in bench.available_baselines()
             else ", torch not installed") + "\n")
    threads = args.torch_threads or "default"
    options = {} if args.xla_defaults else jaxcnn.compiler.compiler_options()
    print(f"jaxcnn's XLA options: {options or 'XLA defaults'}\n")
    print(f"Training, fp32, images/s (median of interleaved rounds; PyTorch threads: {threads}; "
          "compile times cold):\n")
    print("| workload | batch | jaxcnn | plain Flax | PyTorch | jaxcnn/Flax | jaxcnn/PyTorch "
          "| compile s (jaxcnn / Flax) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        r = bench.compare(name, steps=args.steps, rounds=args.rounds, baselines=True, cache=None,
                          torch_threads=args.torch_threads, xla_defaults=args.xla_defaults)
        torch_ips = f"{r['torch_img_per_s']:,.0f}" if "torch_img_per_s" in r else "-"
        torch_ratio = f"{r['jaxcnn_over_torch']:.2f}" if "jaxcnn_over_torch" in r else "-"
        print(f"| {name} | {r['batch']} | {r['img_per_s']:,.0f} | {r['flax_img_per_s']:,.0f} | "
              f"{torch_ips} | {r['jaxcnn_over_flax']:.2f} | {torch_ratio} | "
              f"{r['compile_s']:.2f} / {r['flax_compile_s']:.2f} |", flush=True)
    print("\nInference (`apply` under jit) and input gradient (gradient ascent), images/s:\n")
    print("| workload | jaxcnn infer | Flax infer | ratio | jaxcnn grad | Flax grad | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        r = forward_and_input_grad(name, args.repeats, args.xla_defaults)
        print(f"| {name} | {r['jaxcnn_infer']:,.0f} | {r['flax_infer']:,.0f} | "
              f"{r['jaxcnn_infer'] / r['flax_infer']:.2f} | {r['jaxcnn_grad']:,.0f} | "
              f"{r['flax_grad']:,.0f} | {r['jaxcnn_grad'] / r['flax_grad']:.2f} |", flush=True)
    print(f"\nAfter the run: {machine()}")


if __name__ == "__main__":
    main()
