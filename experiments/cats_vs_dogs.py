"""Seed 004's four-block CNN with dropout, without and then with data augmentation.

The same cnn4 (four 3x3 conv/pool blocks, dropout 0.5, dense 512) is trained twice with
the same seed on a small training set: once on the plain images, once with on-device
augmentation (`jaxcnn.data.augment`: random flips, shifts, zooms and rotations drawn
afresh at every step, passed to `jaxcnn.fit(augment=...)`; validation images are never
augmented). Without augmentation the network memorizes the training set and the
validation accuracy stalls well below the training accuracy (overfitting); augmentation
narrows that gap.

With `--transfer`, a third run fine-tunes the ImageNet VGG-16 (`--transfer imagenet`, the
default: keras.applications' weights, downloaded once; or a weights file) on the same
images: its convolutional base is frozen (`jaxcnn.fit(freeze=FROZEN_BASE)`: no update, not
even a gradient is computed for it), a new 2-class head replaces the 1,000-class one and
is trained with fc1/fc2. With the real weights on PetImages, expect the transfer run's
validation accuracy far above the from-scratch cnn4's (seed 004 / Chollet: about 0.90 vs
0.70-0.80) within a few epochs; every step runs VGG-16 forward, so use a GPU for 150x150.

Command:
    python experiments/cats_vs_dogs.py --folder PetImages [--epochs 30] [--out-dir cats_vs_dogs]
    python experiments/cats_vs_dogs.py --folder PetImages --transfer [imagenet | FILE]
    python experiments/cats_vs_dogs.py [--epochs 30]   # offline: 160 `shapes` images, 32x32
    python experiments/cats_vs_dogs.py --quick          # offline: 6 epochs, for a smoke test
`--folder` takes one sub-folder of images per class (e.g. Microsoft's PetImages with Cat/
and Dog/), read at 150x150 as in the seed, 20% held out for validation.
Expected result: `<out-dir>/curves.png`, training and validation accuracy and loss per
epoch of both runs, and the final accuracies printed. Offline, 30 epochs, seed 0 (on a
2-core CPU, about 1.5 minutes): plain: train 0.988, validation 0.861 (gap 0.13: the
training loss goes to 0.03 while the validation loss stalls at 0.5); augmented: train
0.650, validation 0.801, no gap, both curves still rising (augmentation trades speed of
fitting for generalization; train it longer).
"""
from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import jaxcnn
from jaxcnn import data, models
from jaxcnn.data import augment as A

SMALL_TRAIN = 160  # shapes examples to train on (20 per class): few enough that cnn4 overfits
FROZEN_BASE = r"^block"  # every convolution of VGG-16 (block1_conv1 ... block5_conv3)


def load(folder: str | None, seed: int):
    """(train, validation, padding) from a folder of class folders, or a small `shapes` set."""
    if folder:
        train, val = data.split(data.from_folder(folder, image_size=150), 0.2, seed=seed)
        return train, val, "VALID"  # the seed's 150x150 network
    full = data.load("shapes", "train")
    train, _ = data.split(full, 1 - SMALL_TRAIN / len(full), seed=seed)
    # 32x32 is too small for four VALID conv/pool blocks; SAME keeps 2x2 at the end.
    return train, data.load("shapes", "test"), "SAME"


def augmentation(folder: str | None) -> A.Augmentation:
    """Seed 004's Keras augmentation; milder rotation for shapes, whose lines have a class
    per direction (vertical, horizontal, diagonal)."""
    rotation = 0.1 if folder else 0.02  # fractions of a full turn: 36 and 7 degrees
    return A.Sequential([A.RandomFlip("horizontal"), A.RandomRotation(rotation),
                         A.RandomTranslation(0.2, 0.2), A.RandomZoom(0.2)])


def transfer(train, val, weights, epochs: int, batch_size: int, seed: int, **fields):
    """Fine-tunes VGG-16 with pretrained `weights` and a frozen convolutional base.

    Args:
      train, val: the datasets.
      weights: what `models.create("vgg16", weights=...)` takes ("imagenet", a file, a
        `models.WeightsSource`).
      epochs, batch_size, seed: of the run.
      **fields: other VGG-16 fields (the tests use a narrow one).

    Returns:
      (state, history) of `jaxcnn.fit`.
    """
    model = models.create("vgg16", weights=weights, num_classes=train.num_classes,
                          input_shape=train.image_shape, **fields)
    return jaxcnn.fit(model, train, val, epochs=epochs, batch_size=batch_size,
                      learning_rate=1e-4, seed=seed, freeze=FROZEN_BASE, progress=False)


def report(name: str, history: list[dict]) -> None:
    last = history[-1]
    gap = last["train_accuracy"] - last["eval_accuracy"]
    print(f"{name}: train accuracy {last['train_accuracy']:.3f}, validation accuracy "
          f"{last['eval_accuracy']:.3f}, gap {gap:.3f}")


def plot(histories: dict[str, list[dict]], path: pathlib.Path) -> None:
    """Accuracy and loss per epoch, train solid and validation dashed, one colour per run."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (name, history), colour in zip(histories.items(), ("tab:red", "tab:blue", "tab:green")):
        epochs = [h["epoch"] for h in history]
        for ax, metric in zip(axes, ("accuracy", "loss")):
            ax.plot(epochs, [h[f"train_{metric}"] for h in history], color=colour,
                    label=f"{name}: train")
            ax.plot(epochs, [h[f"eval_{metric}"] for h in history], color=colour, ls="--",
                    label=f"{name}: validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
    axes[0].legend()
    fig.suptitle("cnn4 with dropout, without and with data augmentation"
                 + ("; VGG-16 fine-tuned" if len(histories) > 2 else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="a folder of class folders (e.g. PetImages)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="cats_vs_dogs")
    parser.add_argument("--quick", action="store_true", help="6 epochs on shapes, offline")
    parser.add_argument("--transfer", nargs="?", const="imagenet", metavar="WEIGHTS",
                        help="also fine-tune VGG-16 from these weights with a frozen base "
                             "('imagenet' when given alone, or a weights file)")
    args = parser.parse_args()
    folder, epochs = (None, 6) if args.quick else (args.folder, args.epochs)
    train, val, padding = load(folder, args.seed)
    model = models.create("cnn4", num_classes=train.num_classes, input_shape=train.image_shape,
                          padding=padding)
    histories = {}
    for name, augment in (("plain", None), ("augmented", augmentation(folder))):
        _, histories[name] = jaxcnn.fit(model, train, val, epochs=epochs,
                                        batch_size=args.batch_size, learning_rate=1e-3,
                                        seed=args.seed, augment=augment, progress=False)
        report(name, histories[name])
    if args.transfer:
        _, histories["transfer"] = transfer(train, val, args.transfer, epochs, args.batch_size,
                                            args.seed)
        report("transfer (VGG-16, frozen base)", histories["transfer"])
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(histories, out / "curves.png")
    print(f"wrote {out / 'curves.png'}")


if __name__ == "__main__":
    main()
