"""Seed 003's LeNet-5 on MNIST, and one digit's feature maps through conv1/pool1/conv2/pool2.

LeNet-5 (two 5x5 convolutions with 2x2 max pools, dense 120-100-10) is trained with Adam
and a cosine learning-rate decay; then one test digit goes through the trained network
and every feature map of conv1 (6, 28x28), pool1 (6, 14x14), conv2 (16, 10x10) and pool2
(16, 5x5) is drawn, one row per layer, as in the seed's figures 18-20.

Command:
    python experiments/lenet5_mnist.py --dataset mnist [--epochs 10] [--out-dir lenet5_mnist]
    python experiments/lenet5_mnist.py --quick      # offline: the embedded digits, 3 epochs
Expected result: the test accuracy, printed as `test accuracy ...`: 0.9526 for `--quick`
(the embedded 8x8 digits upscaled to 32x32, 3 epochs, seed 0); LeNet-5 usually reaches
about 0.99 on MNIST in 10 epochs (not measured here: MNIST is not prepared offline);
`<out-dir>/feature_maps.png` (the digit and its 44 feature maps: edges and strokes in
conv1, parts of the digit in conv2) and `<out-dir>/curves.png` (loss and accuracy per
epoch). `--dataset mnist` needs MNIST prepared for TFDS (see README, "Data").
"""
from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import numpy as np

import jaxcnn
from jaxcnn import data, models, viz

LAYERS = ("conv1", "pool1", "conv2", "pool2")


def train(dataset: str, epochs: int, seed: int, workdir: pathlib.Path):
    """Trains LeNet-5 on `dataset` at 32x32; returns (model, variables, test set, history)."""
    train_set = data.load(dataset, "train", image_size=32)
    test_set = data.load(dataset, "test", image_size=32)
    model = models.create("lenet5", num_classes=train_set.num_classes)
    state, history = jaxcnn.fit(model, train_set, test_set, epochs=epochs, batch_size=32,
                                learning_rate=3e-3, schedule="cosine", seed=seed,
                                workdir=workdir, progress=False, log_epochs=True)
    return model, state.variables(), test_set, history


def draw_feature_maps(model, variables, image: np.ndarray, label: int, path: pathlib.Path) -> dict:
    """Draws the digit and all feature maps of `LAYERS`, one row per layer; returns the maps."""
    maps = viz.feature_maps(model, variables, image[None], LAYERS)
    one = {name: np.asarray(m[0]) for name, m in maps.items()}
    rows = {"input": image, **one}
    fig = viz.plot.feature_map_grid(rows, {name: range(m.shape[-1]) for name, m in rows.items()},
                                    cmap="gray")
    fig.suptitle(f"LeNet-5 feature maps of a test digit (label {label})")
    fig.savefig(path, dpi=60)
    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", help="TFDS name (mnist, fashion_mnist, ...) "
                        "or the embedded 'digits'")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="lenet5_mnist", help="run directory and figures")
    parser.add_argument("--quick", action="store_true", help="embedded digits, 3 epochs, offline")
    args = parser.parse_args()
    dataset, epochs = ("digits", 3) if args.quick else (args.dataset, args.epochs)
    out = pathlib.Path(args.out_dir)
    model, variables, test_set, history = train(dataset, epochs, args.seed, out)
    print(f"test accuracy {history[-1]['eval_accuracy']:.4f} ({dataset}, {epochs} epochs)")
    first = next(test_set.batches(1, drop_remainder=False))  # works for TFDS sources too
    maps = draw_feature_maps(model, variables, first["image"][0], int(first["label"][0]),
                             out / "feature_maps.png")
    print("feature maps: " + ", ".join(f"{name} {tuple(m.shape)}" for name, m in maps.items()))
    print(f"wrote {out / 'feature_maps.png'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
