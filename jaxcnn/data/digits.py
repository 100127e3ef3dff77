"""The embedded `digits` dataset: 1,797 8x8 handwritten digits (UCI, via scikit-learn).

Shipped in the package as `resources/digits.npz` (source and CC BY 4.0 licence in
`resources/DIGITS_SOURCE.md`) and served by the TFDS builder `jaxcnn.data.builders.Digits`,
prepared offline on first use. Pixels 0..16 are scaled to [0, 1]. The train/test split is
fixed: 20% of each class held out with seed 0 (1,438 / 359).
"""
from __future__ import annotations

import pathlib

from jaxcnn.data.arrays import ArrayDataset
from jaxcnn.data.catalog import load

SPLITS = {"train": "train", "test": "test", "all": "train+test"}


def digits(split_name: str = "train", image_size: int | tuple[int, int] | None = None,
           data_dir: str | pathlib.Path | None = None) -> ArrayDataset:
    """Loads the embedded digits dataset into memory.

    Args:
      split_name: "train" (1,438 images), "test" (359) or "all" (1,797).
      image_size: resize the 8x8 images to this size (LeNet-5 wants 32).
      data_dir: the TFDS data directory it is prepared in (None: TFDS's default).

    Returns:
      An `ArrayDataset` of (N, H, W, 1) float32 images in [0, 1] and labels 0..9.
    """
    if split_name not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split_name!r}.")
    return load("digits", SPLITS[split_name], image_size=image_size, data_dir=data_dir,
                in_memory=True)
