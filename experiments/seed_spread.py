"""Spread over seeds of the README's main job (`jaxcnn train`: LeNet-5 on the embedded digits).

The same seed gives the same run on one machine, but another CPU kind picks other XLA
kernels, the last bits change and a run becomes another run. The spread of the test
accuracy over seeds on one machine is the room a test of a trained result must leave.

    python experiments/seed_spread.py --seeds 5

trains the default recipe (`jaxcnn.train.TrainConfig()`) once per seed and prints each
test accuracy, then the mean, min and max. Any `TrainConfig` field can be overridden, e.g.
`--set epochs=20 --set label_smoothing=0.1`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
import tomllib

import jaxcnn
from jaxcnn.train.config import config_from_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a TrainConfig field (repeatable)")
    args = parser.parse_args()
    # Each FIELD=VALUE is read as one TOML line, so values get TOML's types.
    overrides = tomllib.loads("\n".join(args.set))
    config = config_from_dict(overrides, "--set")
    accuracies = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:  # a fresh run per seed, kept nowhere
            summary = jaxcnn.train.train_config(
                dataclasses.replace(config, seed=seed, workdir=workdir), verbose=False)
        accuracies.append(summary["test_accuracy"])
        print(json.dumps({"seed": seed, "test_accuracy": round(summary["test_accuracy"], 4),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    print(f"{len(accuracies)} seeds: mean {statistics.mean(accuracies):.4f}, "
          f"min {min(accuracies):.4f}, max {max(accuracies):.4f}")


if __name__ == "__main__":
    main()
