"""The `jaxcnn` command line (also `python -m jaxcnn`).

`jaxcnn train` with no arguments trains LeNet-5 on the embedded `digits` dataset, prints
the test accuracy and writes the run (history, final variables, a summary) under
`--workdir`.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import warnings


_FLAG_TYPES = {"int": int, "float": float, "float | None": float, "int | None": int}


def _train_parser(sub) -> None:
    from jaxcnn.train.config import TrainConfig

    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a model. With no arguments: LeNet-5 on the embedded "
                                   "digits dataset, outputs under runs/lenet5-digits. Settings "
                                   "come from the defaults, then --config, then the flags.")
    p.add_argument("--config", help="a TOML run configuration (see experiments/configs/)")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        text = f"{field.metadata['help']} (default: {field.default})"
        if field.type == "bool":
            p.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=text)
        else:
            p.add_argument(flag, type=_FLAG_TYPES.get(field.type, str), default=argparse.SUPPRESS,
                           help=text)
    group = p.add_argument_group("multi-process runs (jax.distributed.initialize)")
    group.add_argument("--distributed", action="store_true",
                       help="join a multi-process run, settings found by JAX (TPU pods, SLURM)")
    group.add_argument("--coordinator-address", help="host:port of process 0 (CPU/GPU rehearsal)")
    group.add_argument("--num-processes", type=int, help="number of processes")
    group.add_argument("--process-id", type=int, help="this process's index")


def _train_config(args: argparse.Namespace):
    """The run's settings: defaults, then the --config file, then the flags given."""
    from jaxcnn.train.config import TrainConfig, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    return dataclasses.replace(config, **given)


def run_train(args: argparse.Namespace) -> dict | None:
    """Trains as the `train` sub-command describes and writes `run.json` into the workdir.

    Args:
      args: parsed `train` arguments.

    Returns:
      The run summary (also printed and written to `<workdir>/run.json` by process 0).
    """
    config = _train_config(args)
    import jax  # imported here so `jaxcnn --help` answers without loading JAX

    import jaxcnn

    if args.distributed or args.coordinator_address:
        jaxcnn.train.initialize_distributed(args.coordinator_address, args.num_processes,
                                            args.process_id)
    summary = jaxcnn.train.train_config(config)
    if jax.process_index() == 0:
        print(f"{config.model} on {config.dataset}: test accuracy {summary['test_accuracy']:.4f} "
              f"after {config.epochs} epochs in {summary['train_seconds']:.1f} s; outputs in "
              f"{summary['workdir']}/")
    return summary


def _summary_parser(sub) -> None:
    p = sub.add_parser("summary", help="print a model's layers, shapes, parameters and FLOPs",
                       description="Print one row per named layer (output shape, parameters, "
                                   "FLOPs) and the totals, without allocating the model.")
    p.add_argument("model", help="model name (see jaxcnn.models.names())")
    p.add_argument("--input-shape", type=int, nargs=3, metavar=("H", "W", "C"),
                   help="input image shape (default: the model's own)")
    p.add_argument("--num-classes", type=int, help="number of output classes (default: the model's own)")


def run_summary(args: argparse.Namespace) -> str:
    """Prints the summary table of `args.model` and returns it."""
    import jaxcnn

    kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
    if args.input_shape:
        kwargs["input_shape"] = tuple(args.input_shape)
    table = str(jaxcnn.summary(jaxcnn.models.create(args.model, **kwargs)))
    print(table)
    return table


def _visualize_parser(sub) -> None:
    from jaxcnn.train.config import default_workdir

    p = sub.add_parser("visualize",
                       help="draw feature maps, filters, classes, saliency or Grad-CAM of a run",
                       description="Read a run written by `jaxcnn train` and write pictures "
                                   "(PNG, optional GIF) under --out (default WORKDIR/viz).")
    p.add_argument("--workdir", default=default_workdir("lenet5", "digits"),
                   help="the trained run's directory (default: that of `jaxcnn train`)")
    p.add_argument("--what", required=True,
                   choices=["feature-maps", "filters", "classes", "saliency", "gradcam"],
                   help="which pictures")
    p.add_argument("--layer", action="append", default=[],
                   help="layer name (repeat for several feature-map rows); see `jaxcnn summary`")
    p.add_argument("--channels", type=int, nargs="+", help="filters to render (default: all)")
    p.add_argument("--count", type=int, default=8, help="feature maps per layer")
    p.add_argument("--most-active", action="store_true", help="show the most active feature maps")
    p.add_argument("--index", type=int, default=0, help="test image for feature maps")
    p.add_argument("--images", type=int, default=4, help="test images for saliency / Grad-CAM")
    p.add_argument("--steps", type=int, default=256, help="gradient-ascent steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the ascent and SmoothGrad")
    p.add_argument("--gif", action="store_true", help="also write a GIF of the ascent")
    p.add_argument("--out", help="output folder (default WORKDIR/viz)")


def _explain_parser(sub) -> None:
    from jaxcnn.train.config import default_workdir

    p = sub.add_parser("explain",
                       help="attribution maps of a run's test images, and which to trust",
                       description="Read a run written by `jaxcnn train`, explain its first "
                                   "test images with each method and write the maps (NPZ, "
                                   "PNG) under --out (default WORKDIR/viz/explain); with "
                                   "--metrics also the methods x metrics table (JSON, PNG) "
                                   "and contact sheets of the most and least faithful maps.")
    p.add_argument("--workdir", default=default_workdir("lenet5", "digits"),
                   help="the trained run's directory (default: that of `jaxcnn train`)")
    p.add_argument("--method", default="saliency,integrated_gradients,occlusion,gradcam",
                   help="comma-separated methods: saliency, smoothgrad, input_x_gradient, "
                        "guided_backprop, integrated_gradients, occlusion, gradcam, "
                        "gradcam_plus_plus, layercam, scorecam")
    p.add_argument("--layer", help="layer of the CAM methods (default: the last conv layer)")
    p.add_argument("--images", type=int, default=16, help="test images explained")
    p.add_argument("--metrics", action="store_true",
                   help="also score the methods (deletion, insertion, infidelity, "
                        "max-sensitivity)")
    p.add_argument("--seed", type=int, default=0, help="seed of SmoothGrad and the metrics")
    p.add_argument("--out", help="output folder (default WORKDIR/viz/explain)")


def run_explain(args: argparse.Namespace) -> list:
    """Writes what the `explain` sub-command describes and prints the paths."""
    from jaxcnn.paths import as_path
    from jaxcnn.runs import load_run
    from jaxcnn.viz import report

    loaded = load_run(args.workdir)
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    paths = report.write_explanations(
        loaded, args.out or as_path(args.workdir) / "viz" / "explain", methods,
        layer=args.layer, images=args.images, metrics=args.metrics, seed=args.seed)
    for path in paths:
        print(path)
    return paths


def run_visualize(args: argparse.Namespace) -> list:
    """Writes the pictures the `visualize` sub-command describes and prints their paths."""
    from jaxcnn.paths import as_path
    from jaxcnn.runs import load_run
    from jaxcnn.viz import run

    loaded = load_run(args.workdir)
    paths = run.write_pictures(loaded, args.what, args.out or as_path(args.workdir) / "viz",
                               layers=args.layer, channels=args.channels, count=args.count,
                               most=args.most_active, index=args.index, images=args.images,
                               steps=args.steps, seed=args.seed, gif=args.gif)
    for path in paths:
        print(path)
    return paths


def _bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="training throughput on the WORKLOADS.md workloads",
                       description="Time jaxcnn's train step on fixed random data and print one "
                                   "JSON line per workload; --baselines also times plain Flax "
                                   "and PyTorch (when installed) interleaved in the same run.")
    p.add_argument("--workload", default="all", help="lenet5, cnn4, resnet18 or all")
    p.add_argument("--steps", type=int, default=20, help="timed steps per framework")
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved rounds the steps are split into (median round counts)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation")
    p.add_argument("--batch-size", type=int, default=None, help="default: the workload's batch")
    p.add_argument("--strategy", default="jit", choices=["jit", "pmap", "sharded"],
                   help="how jaxcnn's train step is compiled")
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                   help="compute dtype (parameters stay float32)")
    p.add_argument("--baselines", action="store_true", help="also time plain Flax and PyTorch")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="PyTorch intra-op threads (default: one per core)")
    p.add_argument("--compile-cache", default="",
                   help="persistent compilation cache folder (default: ~/.cache/jaxcnn/jax)")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="compile from scratch (cold compile times)")
    p.add_argument("--xla-defaults", action="store_true",
                   help="compile jaxcnn's step with XLA's default options, not jaxcnn's "
                        "(see jaxcnn.compiler)")


def run_bench(args: argparse.Namespace) -> list[dict]:
    """Runs the `bench` sub-command: prints one JSON line per workload.

    Args:
      args: parsed `bench` arguments.

    Returns:
      The records printed.
    """
    from jaxcnn import bench  # imported here so `jaxcnn --help` answers without loading JAX

    names = list(bench.WORKLOADS) if args.workload == "all" else [args.workload]
    cache = None if args.no_compile_cache else args.compile_cache
    records = []
    for name in names:
        record = bench.compare(name, batch=args.batch_size, steps=args.steps, rounds=args.rounds,
                               warmup=args.warmup, strategy=args.strategy,
                               precision=args.precision, baselines=args.baselines, cache=cache,
                               torch_threads=args.torch_threads, xla_defaults=args.xla_defaults)
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def build_parser() -> argparse.ArgumentParser:
    """The `jaxcnn` argument parser with its sub-commands."""
    parser = argparse.ArgumentParser(prog="jaxcnn", description="Convolutional neural networks in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _summary_parser(sub)
    _visualize_parser(sub)
    _explain_parser(sub)
    _bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `jaxcnn` console script.

    Args:
      argv: arguments (defaults to `sys.argv[1:]`).

    Returns:
      The process exit status.
    """
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = functools.partial(_show_warning, args.command)
        return _run(args)


def _show_warning(command, message, category, filename, lineno, file=None, line=None):
    """One line per warning, as a command-line user wants them (no source lines)."""
    print(f"jaxcnn {command}: warning: {message}", file=file or sys.stderr)


def _run(args: argparse.Namespace) -> int:
    """Runs the chosen sub-command; returns the exit status."""
    try:
        if args.command == "train":
            run_train(args)
        if args.command == "summary":
            run_summary(args)
        if args.command == "visualize":
            run_visualize(args)
        if args.command == "explain":
            run_explain(args)
        if args.command == "bench":
            run_bench(args)
    except (ValueError, TypeError) as err:
        print(f"jaxcnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"jaxcnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        from jaxcnn.runs import RunInUse
        from jaxcnn.train.preemption import Preempted

        if isinstance(err, RunInUse):
            print(f"jaxcnn {args.command}: error: {err}", file=sys.stderr)
            return 1
        if not isinstance(err, Preempted):
            raise
        print(f"jaxcnn {args.command}: {err}", file=sys.stderr)
        # A preemption is a clean stop (status 0); Ctrl-C exits as shells expect (128 + 2).
        return 130 if err.signal_name == "SIGINT" else 0
    return 0
