"""Datasets and batches: embedded datasets, the user's own arrays, and a loader by name.

Every dataset here is an `ArrayDataset` (float32 NHWC images in [0, 1], int32 labels)
whose `batches()` feed `jaxcnn.fit` and the train/eval steps.
"""
from __future__ import annotations

from jaxcnn.data.arrays import ArrayDataset, Batch, from_arrays, resize_images, split
from jaxcnn.data.digits import digits

_EMBEDDED = {"digits": digits}


def names() -> list[str]:
    """Names of the datasets `load` knows."""
    return sorted(_EMBEDDED)


def load(name: str, split: str = "train", image_size: int | tuple[int, int] | None = None) -> ArrayDataset:
    """Loads a dataset by name.

    Args:
      name: a name from `names()`.
      split: which split, e.g. "train" or "test".
      image_size: resize images to this size.

    Returns:
      An `ArrayDataset`.
    """
    if name not in _EMBEDDED:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(names())}.")
    return _EMBEDDED[name](split, image_size=image_size)


__all__ = ["ArrayDataset", "Batch", "digits", "from_arrays", "load", "names", "resize_images",
           "split"]
