"""The embedded `digits` dataset: 1,797 8x8 handwritten digits (UCI, via scikit-learn).

Shipped in the package as `resources/digits.npz` (source and CC BY 4.0 licence in
`resources/DIGITS_SOURCE.md`), so it works offline. Pixels 0..16 are scaled to [0, 1].
The train/test split is fixed: 20% of each class held out with seed 0 (1,438 / 359).
"""
from __future__ import annotations

import functools
import importlib.resources

import numpy as np

from jaxcnn.data.arrays import ArrayDataset, from_arrays, resize_images, split

NUM_CLASSES = 10
TEST_FRACTION = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    path = importlib.resources.files("jaxcnn.data") / "resources" / "digits.npz"
    with path.open("rb") as f, np.load(f) as npz:
        return npz["images"], npz["labels"]


def digits(split_name: str = "train", image_size: int | tuple[int, int] | None = None) -> ArrayDataset:
    """Loads the embedded digits dataset.

    Args:
      split_name: "train" (1,438 images), "test" (359) or "all" (1,797).
      image_size: resize the 8x8 images to this size (LeNet-5 wants 32).

    Returns:
      An `ArrayDataset` of (N, H, W, 1) float32 images in [0, 1] and labels 0..9.
    """
    if split_name not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split_name!r}.")
    images, labels = _raw()
    full = from_arrays(images.astype(np.float32) / 16.0, labels, num_classes=NUM_CLASSES,
                       name="digits")
    if split_name != "all":
        train, test = split(full, TEST_FRACTION, seed=SPLIT_SEED)
        full = train if split_name == "train" else test
    if image_size is not None:
        full = ArrayDataset(resize_images(full.images, image_size), full.labels,
                            full.num_classes, full.name)
    return full
