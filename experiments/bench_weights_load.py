"""Seconds to load a cached VGG-16 weights file: jaxcnn vs Keras' own `load_weights`.

Builds a full-size VGG-16 in Keras 3 (JAX backend, random weights), saves it once as a
whole-model `.h5` (the HDF5 layout of the keras.applications files) and as a Keras 3
`.weights.h5`, then times in one run, alternating, each side `--rounds` times:
  * jaxcnn: `models.load_weights(vgg16, file)` to device arrays (block_until_ready);
  * Keras:  `keras_vgg16.load_weights(file)` into the built model.
The file is in the OS page cache after the first read, as a cached download is. Prints
the median seconds of each and their ratio (below 1: jaxcnn is faster). Needs keras
(`pip install keras`), about 3 GB of memory and 1.2 GB of disk under --dir.

Usage: python experiments/bench_weights_load.py [--rounds 3] [--dir /tmp/bench_weights]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402

from jaxcnn import models  # noqa: E402


def median_seconds(load, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/bench_weights")
    args = parser.parse_args()
    folder = pathlib.Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    net = keras.applications.VGG16(weights=None)
    files = {"whole-model .h5": folder / "vgg16.h5",
             "Keras 3 .weights.h5": folder / "vgg16.weights.h5"}
    if not files["whole-model .h5"].exists():
        net.save(files["whole-model .h5"])
    if not files["Keras 3 .weights.h5"].exists():
        net.save_weights(files["Keras 3 .weights.h5"])
    model = models.create("vgg16")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"jax {jax.__version__}, keras {keras.__version__}; VGG-16, "
          f"{files['whole-model .h5'].stat().st_size / 2**20:.0f} MiB")
    for label, path in files.items():
        ours = lambda: jax.block_until_ready(models.load_weights(model, path))
        theirs = lambda: net.load_weights(path)
        ours(), theirs()  # warm: page cache, imports, first-call costs
        jaxcnn_s = median_seconds(ours, args.rounds)
        keras_s = median_seconds(theirs, args.rounds)
        print(f"{label}: jaxcnn {jaxcnn_s:.2f} s, Keras {keras_s:.2f} s, "
              f"ratio {jaxcnn_s / keras_s:.2f}")


if __name__ == "__main__":
    main()
