"""The `jaxcnn` command line (also `python -m jaxcnn`).

`jaxcnn train` with no arguments trains LeNet-5 on the embedded `digits` dataset, prints
the test accuracy and writes the run (history, final variables, a summary) under
`--workdir`.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

DEFAULTS = {"model": "lenet5", "dataset": "digits", "epochs": 30, "batch_size": 32,
            "optimizer": "adam", "learning_rate": 1e-3, "seed": 0, "workdir": "runs/lenet5-digits"}


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a model. With no arguments: LeNet-5 on the embedded "
                                   "digits dataset, outputs under runs/lenet5-digits.")
    p.add_argument("--model", default=DEFAULTS["model"], help="model name (see jaxcnn.models.names())")
    p.add_argument("--dataset", default=DEFAULTS["dataset"], help="dataset name (see jaxcnn.data.names())")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="examples per step")
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"], help="optimizer name, e.g. adam, sgd, momentum")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"], help="learning rate")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of init, shuffling and dropout")
    p.add_argument("--workdir", default=DEFAULTS["workdir"], help="where the run's outputs are written")
    p.add_argument("--quiet", action="store_true", help="no progress bar, one line per epoch")


def run_train(args: argparse.Namespace) -> dict:
    """Trains as the `train` sub-command describes and writes `run.json` into the workdir.

    Args:
      args: parsed `train` arguments.

    Returns:
      The run summary (also printed and written to `<workdir>/run.json`).
    """
    import jaxcnn  # imported here so `jaxcnn --help` answers without loading JAX

    model = jaxcnn.models.create(args.model)
    size = tuple(model.input_shape[:2])
    train_data = jaxcnn.data.load(args.dataset, "train", image_size=size)
    test_data = jaxcnn.data.load(args.dataset, "test", image_size=size)
    model = jaxcnn.models.create(args.model, num_classes=train_data.num_classes,
                                 input_shape=train_data.image_shape)
    start = time.perf_counter()
    state, history = jaxcnn.fit(model, train_data, test_data, epochs=args.epochs,
                                batch_size=args.batch_size, optimizer=args.optimizer,
                                learning_rate=args.learning_rate, seed=args.seed,
                                workdir=args.workdir, progress=not args.quiet)
    seconds = time.perf_counter() - start
    if args.quiet:
        for record in history:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
    summary = {"model": args.model, "dataset": args.dataset, "epochs": args.epochs,
               "batch_size": args.batch_size, "optimizer": args.optimizer,
               "learning_rate": args.learning_rate, "seed": args.seed,
               "test_accuracy": history[-1]["eval_accuracy"], "test_loss": history[-1]["eval_loss"],
               "train_seconds": round(seconds, 2)}
    pathlib.Path(args.workdir, "run.json").write_text(json.dumps(summary, indent=2))
    print(f"{args.model} on {args.dataset}: test accuracy {summary['test_accuracy']:.4f} "
          f"after {args.epochs} epochs in {seconds:.1f} s; outputs in {args.workdir}/")
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
                               torch_threads=args.torch_threads)
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def build_parser() -> argparse.ArgumentParser:
    """The `jaxcnn` argument parser with its sub-commands."""
    parser = argparse.ArgumentParser(prog="jaxcnn", description="Convolutional neural networks in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _summary_parser(sub)
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
    try:
        if args.command == "train":
            run_train(args)
        if args.command == "summary":
            run_summary(args)
        if args.command == "bench":
            run_bench(args)
    except ValueError as err:
        print(f"jaxcnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0
