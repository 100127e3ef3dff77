"""In-memory image datasets and their batches.

Contract: an `ArrayDataset` holds NHWC images, either uint8 (0..255, what decoders give:
4x less host memory and host-to-device traffic; the compiled step turns them into float32
in [0, 1] with `unit_float`) or float32 in [0, 1], and int32 labels in [0, num_classes).
`batches()` yields dicts `{"image", "label", "mask"}` of NumPy arrays: training batches drop the remainder and are shuffled per epoch from `(seed, epoch)`;
evaluation batches cover every example exactly once, the last one padded to full size
with `mask == False` rows so a compiled step sees one shape only.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import jax
import numpy as np

from jaxcnn.ops.shapes import is_int
from jaxcnn.data.batching import Batch, batch_plan, count_batches, resolve_process


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """Images and labels held in host memory.

    Attributes:
      images: (N, H, W, C) array, uint8 (0..255) or float32 in [0, 1]; `unit_float` turns
        either into float32 in [0, 1], as the models take them.
      labels: int32 array (N,) with values in [0, num_classes).
      num_classes: number of classes.
      name: a readable name used in messages and run records.
      class_names: optional readable name of each class.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str = "arrays"
    class_names: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.images.dtype not in (np.uint8, np.float32):
            raise ValueError(f"ArrayDataset images must be uint8 (0..255) or float32 in [0, 1], "
                             f"got dtype {self.images.dtype}; build it with data.from_arrays, "
                             "which converts and checks them.")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (H, W, C) shape of one image."""
        return tuple(self.images.shape[1:])

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                epoch: int = 0, drop_remainder: bool = False, process_index: int | None = None,
                process_count: int | None = None, start_batch: int = 0) -> Iterator[Batch]:
        """Iterates over the dataset once.

        Args:
          batch_size: examples per global batch (summed over processes).
          shuffle: permute the examples, deterministically from `(seed, epoch)`.
          seed: the run's seed.
          epoch: the epoch number; a different epoch gives a different order.
          drop_remainder: drop the last incomplete batch (training). Otherwise the last
            batch is padded to `batch_size` with rows whose `mask` is False (evaluation).
          process_index: this process's index (default `jax.process_index()`).
          process_count: number of processes (default `jax.process_count()`); each yields
            only its `batch_size // process_count` rows of every global batch.
          start_batch: start at this batch of the epoch (a run resumed mid-epoch).

        Returns:
          An iterator of batches `{"image": (b,H,W,C) uint8 or float32 as held, "label": (b,) int32,
          "mask": (b,) bool}` with `b = batch_size // process_count`.
        """
        index, count = resolve_process(process_index, process_count)
        for idx, mask in batch_plan(len(self), batch_size, shuffle=shuffle, seed=seed,
                                    epoch=epoch, drop_remainder=drop_remainder,
                                    process_index=index, process_count=count, name=self.name,
                                    start_batch=start_batch):
            yield masked_batch(self.images[idx], self.labels[idx], mask)

    def num_batches(self, batch_size: int, drop_remainder: bool) -> int:
        """How many batches `batches()` yields for these arguments."""
        return count_batches(len(self), batch_size, drop_remainder)


def masked_batch(images: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> Batch:
    """Builds a batch whose padding rows (mask False) hold zero images and label 0."""
    if not mask.all():
        images = np.where(mask[:, None, None, None], images, np.zeros((), images.dtype))
        labels = np.where(mask, labels, np.zeros((), labels.dtype))
    return {"image": images, "label": labels, "mask": mask}


def from_arrays(images, labels, *, num_classes: int | None = None,
                image_size: int | tuple[int, int] | None = None,
                name: str = "arrays", class_names=None) -> ArrayDataset:
    """Wraps the user's own NumPy arrays as a dataset.

    Args:
      images: (N, H, W) or (N, H, W, C) array. uint8 images are kept 8-bit (scaled by
        1/255 inside the compiled step; resized ones become float32); float images must lie
        in [0, 1] already.
      labels: (N,) integer class indices.
      num_classes: number of classes; defaults to `max(labels) + 1`.
      image_size: resize every image to this (H, W) (or HxH for an int), bilinearly.
      name: a readable name for messages.
      class_names: optional name of each class, `num_classes` of them.

    Returns:
      An `ArrayDataset`.

    Raises:
      ValueError: wrong ranks, mismatched lengths, non-integer or out-of-range labels.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3 and images.shape[-1] in (3, 4):
        raise ValueError(f"images of shape {images.shape} look like one (H, W, C) image; pass "
                         "images[None] for a single image, or an (N, H, W, 1) array for a batch "
                         "of grayscale images.")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim == 4 and images.shape[1] in (1, 3, 4) and images.shape[3] > 4:
        raise ValueError(f"images of shape {images.shape} look channels-first (NCHW); jaxcnn "
                         "uses NHWC: pass images.transpose(0, 2, 3, 1).")
    if images.ndim != 4:
        raise ValueError(
            f"images must be a (N, H, W) or (N, H, W, C) array, got shape {images.shape}; "
            "for a single image add a batch axis with images[None].")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels must be a 1-D array with one label per image ({images.shape[0]}), "
            f"got shape {labels.shape}.")
    if images.shape[0] == 0:
        raise ValueError("images is empty: a dataset needs at least one example.")
    labels = _int32_labels(labels)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if not is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
            f"labels must lie in [0, num_classes={num_classes}), got {int(labels[bad][0])} "
            f"at index {int(np.flatnonzero(bad)[0])}; pass the right num_classes or fix "
            "the labels.")
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but there are "
                             f"num_classes={num_classes} classes; give one name per class.")
    if images.dtype != np.uint8 or image_size is not None:
        images = _to_unit_float(images)
    if image_size is not None:
        images = resize_images(images, image_size)
    return ArrayDataset(images, labels, int(num_classes), name, class_names)


def _int32_labels(labels: np.ndarray) -> np.ndarray:
    """Integer class indices as int32; refuses strings, fractions and values beyond int32."""
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)
            or labels.dtype == bool):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}; map "
                         "names to indices with `names, labels = np.unique(labels, "
                         "return_inverse=True)`.")
    if np.issubdtype(labels.dtype, np.floating) and not np.all(np.mod(labels, 1) == 0):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype} "
                         "with non-integer values.")
    info = np.iinfo(np.int32)
    if labels.size and (labels.min() < info.min or labels.max() > info.max):
        raise ValueError(f"labels must fit int32, got values in [{labels.min()}, "
                         f"{labels.max()}]; class indices run from 0 to num_classes - 1.")
    return labels.astype(np.int32)


# uint8 -> [0, 1]: a multiplication, the same on the host and in a compiled step (XLA turns
# a division by 255 into this multiplication), so 8-bit and float batches train alike.
UINT8_SCALE = np.float32(1 / 255)


def unit_float(images):
    """Images as the models take them: uint8 images (NumPy or JAX, also inside a compiled
    step) become float32 in [0, 1]; float images pass unchanged.

    Args:
      images: uint8 or float array.

    Returns:
      An array of the same kind: float32 in [0, 1] for uint8 input, else `images`.
    """
    if images.dtype == np.uint8:
        return images.astype(np.float32) * UINT8_SCALE
    return images


def _to_unit_float(images: np.ndarray) -> np.ndarray:
    """Converts images to float32 in [0, 1] (uint8 times UINT8_SCALE).

    Float images must already lie in [0, 1]: values such as 0-255 are refused rather than
    guessed at, since both a silent rescale and none at all would train the wrong thing.
    """
    if images.dtype == np.uint8:
        return images.astype(np.float32) * UINT8_SCALE
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}; "
                         "convert them with images.astype('float32') / max_value.")
    images = images.astype(np.float32)
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or Inf values; fix or drop those images.")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        hint = ("they look like 0-255 pixel values: pass images / 255 or the uint8 array"
                if low >= 0 and high <= 255 else "rescale them to [0, 1]")
        raise ValueError(f"float images must lie in [0, 1], got values in [{low:g}, {high:g}]; "
                         f"{hint}.")
    return images


def resize_images(images: np.ndarray, image_size: int | tuple[int, int]) -> np.ndarray:
    """Resizes a (N, H, W, C) float batch to `image_size` with bilinear interpolation.

    Args:
      images: (N, H, W, C) float32 array.
      image_size: target (H, W), or an int for a square.

    Returns:
      A float32 NumPy array (N, new_H, new_W, C).
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"image_size must be a positive int or (height, width), got {image_size}.")
    if images.shape[1:3] == size:
        return images
    shape = (images.shape[0], *size, images.shape[3])
    # antialias so downsizing averages instead of aliasing; upsizing is plain bilinear.
    out = jax.image.resize(images, shape, method="bilinear", antialias=True)
    return np.asarray(out, dtype=np.float32)


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Converts float images (..., C) between grayscale (C=1) and RGB (C=3).

    RGB to grayscale uses the ITU-R 601 luma weights (as PIL's "L" mode does).

    Args:
      images: float array whose last axis is 1 or 3 channels.
      channels: the wanted number of channels, 1 or 3.

    Returns:
      The images with `channels` channels (the input itself when it already has them).
    """
    have = images.shape[-1]
    if have == channels:
        return images
    if (have, channels) == (1, 3):
        return np.repeat(images, 3, axis=-1)
    if (have, channels) == (3, 1):
        luma = np.array([0.299, 0.587, 0.114], images.dtype)
        return (images @ luma)[..., None].astype(images.dtype)
    raise ValueError(f"cannot convert images with {have} channels to {channels}; only "
                     "grayscale (1) <-> RGB (3) conversions are supported.")


def held_out_rows(labels: np.ndarray, num_classes: int, test_fraction: float, seed: int,
                  name: str) -> np.ndarray:
    """The rows held out by a stratified split: `test_fraction` of each class, drawn
    deterministically from `seed`.

    Args:
      labels: (N,) labels.
      num_classes: number of classes.
      test_fraction: share of each class held out, in (0, 1).
      seed: seed of the draw.
      name: the dataset's name, for messages.

    Returns:
      (N,) bool, True for held-out rows.

    Raises:
      ValueError: a fraction outside (0, 1), or one that leaves a part empty.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        test_idx.append(members[:int(round(len(members) * test_fraction))])
    is_test = np.zeros(len(labels), bool)
    is_test[np.concatenate(test_idx).astype(int)] = True
    if is_test.all() or not is_test.any():
        part = "held-out" if not is_test.any() else "training"
        raise ValueError(f"split of the {len(labels)} examples of '{name}' with "
                         f"test_fraction={test_fraction} leaves the {part} part empty; use "
                         "more examples or another test_fraction.")
    return is_test


def split(dataset: ArrayDataset, test_fraction: float, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    """Splits a dataset into (train, held-out) deterministically, stratified by class.

    A streamed folder (`FolderStream`) is split by its own `split` method, the same way.

    Args:
      dataset: the dataset to split.
      test_fraction: fraction of each class held out, in (0, 1).
      seed: seed of the permutation; the same seed always gives the same split.

    Returns:
      `(train, test)` datasets whose names end in ":train" and ":test".
    """
    if hasattr(dataset, "split"):  # a FolderStream
        return dataset.split(test_fraction, seed)
    is_test = held_out_rows(dataset.labels, dataset.num_classes, test_fraction, seed,
                            dataset.name)

    def part(sel: np.ndarray, suffix: str) -> ArrayDataset:
        return dataclasses.replace(dataset, images=dataset.images[sel],
                                   labels=dataset.labels[sel], name=f"{dataset.name}:{suffix}")

    return part(~is_test, "train"), part(is_test, "test")
