"""Rebuild jaxcnn's embedded `digits` dataset file from scikit-learn's copy.

The UCI "Optical Recognition of Handwritten Digits" test set (1,797 8x8 images, pixel
values 0-16, 10 classes) ships inside scikit-learn, so no network is needed. This script
stores it as `jaxcnn/data/resources/digits.npz` (uint8 arrays, compressed), which is what
`jaxcnn.data.digits` reads.

Command (needs scikit-learn once: `pip install scikit-learn`):
    python experiments/build_digits.py
Expected result: "wrote .../digits.npz: images (1797, 8, 8) uint8, labels (1797,) uint8".
"""
import argparse
import pathlib

import numpy as np
from sklearn.datasets import load_digits

DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[1] / "jaxcnn/data/resources/digits.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)  # values are integers 0..16
    labels = bunch.target.astype(np.uint8)
    assert np.array_equal(images, bunch.images), "digits pixels are expected to be integers"
    np.savez_compressed(args.out, images=images, labels=labels)
    print(f"wrote {args.out}: images {images.shape} {images.dtype}, labels {labels.shape} {labels.dtype}")


if __name__ == "__main__":
    main()
