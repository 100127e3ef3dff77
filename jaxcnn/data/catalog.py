"""Image-classification datasets by name, read from TFDS without TensorFlow.

Contract: `load(name, split)` returns a dataset with the same protocol as `ArrayDataset`
(`batches`, `num_batches`, `image_shape`, `num_classes`, `name`, `len`): float32 NHWC
images in [0, 1] resized to `image_size`, int32 labels. Any TFDS catalog dataset with an
image and a class label works (mnist, fashion_mnist, kmnist, emnist, cifar10, cifar100,
svhn_cropped, cats_vs_dogs, imagenette, ...), as do the embedded `digits` and `shapes`.
Data are read through `tfds.data_source` (ArrayRecord random access, no TensorFlow).
A split small enough is decoded once into memory (`ArrayDataset`); a larger one is read,
decoded and resized batch by batch (`SourceDataset`; wrap its batches in
`prefetch_to_device` so reading overlaps the train step).

Catalog datasets must be prepared once as ArrayRecord, which needs the internet and,
for most image datasets, TensorFlow: `tfds build NAME --file_format=array_record`.
The embedded datasets prepare themselves on first use, offline.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import pathlib
import socket
from typing import Any, Sequence

import cv2
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxcnn.data import builders
from jaxcnn.data.arrays import UINT8_SCALE, ArrayDataset, convert_channels
from jaxcnn.data.decode import crop_resize, decode
from jaxcnn.data.folder import IN_MEMORY_MAX_BYTES
from jaxcnn.data.stream import FOLDER_PREFIX, FolderStream, Streamed, load_folder



class DatasetNotPreparedError(ValueError):
    """A catalog dataset is not in `data_dir` and could not be prepared here."""


@dataclasses.dataclass(frozen=True)
class SourceDataset(Streamed):
    """A dataset read batch by batch from a random-access source (a TFDS data source, such
    as ArrayRecord files), in Grain worker processes when `workers` > 0.

    Attributes:
      source: a sequence of examples (dicts holding `image_key` and `label_key`).
      num_classes: number of classes.
      image_shape: (H, W, C) of the images the batches hold (after resizing).
      name: a readable name used in messages and run records.
      class_names: optional readable name of each class.
      image_key: key of the image in an example.
      label_key: key of the label in an example.
      workers: processes that read and decode examples (0: this process).
      keep_uint8: the source's images are 8-bit (arrays, or encoded files left undecoded
        by TFDS) and stay 8-bit (`fit_uint8`; scaled inside the compiled step); otherwise
        they are fitted as float32 in [0, 1] (`fit_image`).
    """

    source: Sequence[dict[str, Any]]
    num_classes: int
    image_shape: tuple[int, int, int]
    name: str
    class_names: tuple[str, ...] | None = None
    image_key: str = "image"
    label_key: str = "label"
    workers: int = 0
    keep_uint8: bool = False

    def __len__(self) -> int:
        return len(self.source)

    def describe(self, index: int) -> str:
        """The example, for messages."""
        return f"example {index}"

    @property
    def pixel_dtype(self) -> type:
        """The batches' image type: uint8 (`keep_uint8`) or float32."""
        return np.uint8 if self.keep_uint8 else np.float32

    def load_into(self, index: int, real: bool, seed: int, epoch: int,
                  out: np.ndarray) -> tuple[int, bool, str]:
        """Reads and decodes one example into its batch row `out` (in a worker process when
        `workers` > 0); see `Streamed`. No random transform: `seed` and `epoch` are unused.

        Returns:
          (label, mask, error ""): a source's errors are raised, not skipped.
        """
        del seed, epoch
        if not real:
            out.fill(0)
            return 0, False, ""
        images, labels = self.read(np.array([index]))
        out[...] = images[0]
        return int(labels[0]), True, ""

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reads, decodes and resizes the examples at `indices`.

        Args:
          indices: example indices.

        Returns:
          `(images, labels)`: (n, H, W, C) uint8 (`keep_uint8`) or float32 in [0, 1], and
          (n,) int32.
        """
        examples = [self.source[int(i)] for i in indices]
        if self.keep_uint8:
            images = np.stack([fit_uint8(ex[self.image_key], self.image_shape)
                               for ex in examples])
        else:
            images = np.stack([fit_image(np.asarray(ex[self.image_key]), self.image_shape)
                               for ex in examples])
        labels = np.array([ex[self.label_key] for ex in examples], np.int32)
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            raise ValueError(
                f"dataset '{self.name}' has label {labels[bad][0]} at example "
                f"{int(indices[bad][0])}, outside [0, num_classes={self.num_classes}); fix the "
                "labels or pass the right num_classes.")
        return images, labels

    def to_arrays(self, chunk_size: int = 1024) -> ArrayDataset:
        """Decodes every example into memory as an `ArrayDataset` (same order)."""
        parts = [self.read(np.arange(start, min(start + chunk_size, len(self))))
                 for start in range(0, len(self), chunk_size)]
        return ArrayDataset(np.concatenate([p[0] for p in parts]),
                            np.concatenate([p[1] for p in parts]), self.num_classes, self.name,
                            self.class_names)


def fit_uint8(image, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Turns one 8-bit image into uint8 of exactly `image_shape`, with the streaming
    pipeline's decoder and resize (`data.decode`: simplejpeg/OpenCV, 0.5 ms a JPEG where
    TFDS's own Pillow decode and a float resize take several times that).

    Args:
      image: an encoded image file (bytes: a TFDS `Image` feature read undecoded), or an
        (H, W) or (H, W, C) uint8 array.
      image_shape: the wanted (H, W, C); 1 <-> 3 channels are converted (ITU-R 601 luma).

    Returns:
      A uint8 (H, W, C) array.
    """
    height, width, channels = image_shape
    if isinstance(image, bytes):
        pixels = decode(image, channels)
    else:
        pixels = np.asarray(image, np.uint8)
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        if pixels.shape[2] not in (1, 3):
            raise ValueError(f"cannot convert images with {pixels.shape[2]} channels to "
                             f"{channels}; only grayscale (1) <-> RGB (3) conversions are "
                             "supported.")
        if pixels.shape[2] != channels:
            code = cv2.COLOR_GRAY2RGB if channels == 3 else cv2.COLOR_RGB2GRAY
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), code).reshape(
                *pixels.shape[:2], channels)
    if pixels.shape[:2] == (height, width):
        return pixels
    return crop_resize(pixels, (0, 0, pixels.shape[1], pixels.shape[0]), (height, width))


def fit_image(image: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Turns one decoded image into float32 in [0, 1] of exactly `image_shape`.

    Args:
      image: (H, W) or (H, W, C) uint8 (0..255) or float (in [0, 1]) image.
      image_shape: the wanted (H, W, C); 1 <-> 3 channels are converted.

    Returns:
      A float32 (H, W, C) array.
    """
    if image.ndim == 2:
        image = image[..., None]
    scale = UINT8_SCALE if image.dtype == np.uint8 else np.float32(1)
    image = image.astype(np.float32) * scale
    height, width, channels = image_shape
    if image.shape[:2] != (height, width):
        # PIL's bilinear filter widens its support when shrinking, so it antialiases; it
        # resizes float32 ("F") images one channel at a time.
        image = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(plane))
                                     .resize((width, height), Image.Resampling.BILINEAR))
                          for plane in np.moveaxis(image, -1, 0)], axis=-1)
    return convert_channels(image, channels)


def catalog_names() -> list[str]:
    """Names of every dataset TFDS knows here (catalog and embedded)."""
    return tfds.list_builders(with_community_datasets=False)


def check_name(name: str) -> None:
    """Refuses a dataset name TFDS does not know, suggesting the closest ones."""
    base = name.split("/")[0].split(":")[0]
    known = catalog_names()
    if base not in known:
        close = difflib.get_close_matches(base, known, n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see tfds.list_builders()."
        raise ValueError(f"unknown dataset {name!r}: not in the TFDS catalog nor embedded "
                         f"({', '.join(builders.EMBEDDED)}); {hint}")


def not_prepared_message(builder: tfds.core.DatasetBuilder, reason: str) -> str:
    """How to prepare a catalog dataset, or where to put a prepared copy."""
    name, root = builder.name, pathlib.Path(builder.data_dir_root)
    version_dir = pathlib.Path(builder.data_dir).relative_to(root)
    return (
        f"dataset '{name}' is not prepared in {root} ({reason}). Prepare it once as ArrayRecord "
        "on a machine with internet access (TFDS needs TensorFlow to encode most image "
        "datasets: pip install tensorflow):\n"
        f"    tfds build {name} --data_dir={root} --file_format=array_record\n"
        f"or copy a prepared copy so that {root / version_dir} holds dataset_info.json, "
        f"features.json and the {name}-*.array_record-* files, or pass data_dir= (or set "
        f"TFDS_DATA_DIR) to the folder that already holds {name}/. A copy prepared as "
        "TFRecord converts with `tfds convert_format --dataset_version_dir=DIR "
        "--out_file_format=array_record`.")


# Set to any non-empty value to never download: a missing catalog dataset fails at once.
OFFLINE_VARIABLE = "JAXCNN_OFFLINE"
# Where TFDS fetches most catalog data from; reaching it tells a machine that is online
# from one that is not.
PROBE_HOST = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_S = 5.0


def _downloads(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether preparing `builder` goes through TFDS's own, downloading preparation.

    `tfds.testing.mock_data` replaces it with a no-op that needs no network, and then no
    probe is made. TFDS wraps the method anew on every access, so it is recognised by name.
    """
    method = type(builder).download_and_prepare
    return getattr(method, "__qualname__", "") == "DatasetBuilder.download_and_prepare"


@functools.cache
def network_unreachable() -> str | None:
    """Why `PROBE_HOST` cannot be reached (asked once per process), or None if it can."""
    try:
        socket.create_connection(PROBE_HOST, timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"cannot reach {PROBE_HOST[0]}:{PROBE_HOST[1]} ({err.strerror or err})"
    return None


def prepared_builder(name: str, data_dir: str | pathlib.Path | None,
                     download: bool) -> tfds.core.DatasetBuilder:
    """The TFDS builder of `name`, prepared as ArrayRecord (on first use if allowed).

    Args:
      name: a TFDS name, optionally with config and version ("shapes/64x64:1.0.0").
      data_dir: the TFDS data directory; None for TFDS's default.
      download: prepare a catalog dataset that is missing (needs the internet).
        Embedded datasets are always prepared, offline.

    Returns:
      A builder whose data are on disk.
    """
    check_name(name)
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    if builder.is_prepared():
        return builder
    embedded = builder.name in builders.EMBEDDED
    if not (download or embedded):
        raise DatasetNotPreparedError(not_prepared_message(builder, "download=False"))
    if not embedded and os.environ.get(OFFLINE_VARIABLE):
        raise DatasetNotPreparedError(not_prepared_message(builder, f"{OFFLINE_VARIABLE} is set"))
    if not embedded and _downloads(builder) and (why := network_unreachable()):
        # TFDS would retry every download for minutes before failing the same way.
        raise DatasetNotPreparedError(not_prepared_message(builder, f"no network: {why}"))
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    except Exception as err:  # network, TensorFlow or permission errors alike
        builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
        if builder.is_prepared():  # another process prepared it at the same time
            return builder
        if embedded:
            raise
        raise DatasetNotPreparedError(
            not_prepared_message(builder, f"preparing it failed: {type(err).__name__}: {err}")
        ) from err
    return builder


def load(name: str, split: str = "train", *, image_size: int | tuple[int, int] | None = None,
         channels: int | None = None, data_dir: str | pathlib.Path | None = None,
         download: bool = True, in_memory: bool | None = None, workers: int = 0,
         folder_options: dict | None = None) -> ArrayDataset | SourceDataset | FolderStream:
    """Loads an image-classification dataset by its TFDS name.

    Args:
      name: a TFDS name ("mnist", "cifar10", "imagenette/160px-v2", "shapes", "digits"),
        or "folder:PATH" for a folder of class sub-folders, streamed (`data.stream`).
      split: a TFDS split ("train", "test", "train[:90%]", "train+test").
      image_size: resize images to this (H, W) (or HxH for an int); required when the
        dataset's images vary in size.
      channels: 1 (grayscale) or 3 (RGB) to convert; None keeps the dataset's.
      data_dir: the TFDS data directory; None for `$TFDS_DATA_DIR` or
        `~/tensorflow_datasets`.
      download: prepare a missing catalog dataset (needs the internet and usually
        TensorFlow); with False a missing dataset raises at once.
      in_memory: decode the whole split into memory; None decides by size (up to
        `IN_MEMORY_MAX_BYTES` of images as held: uint8 or float32).
      workers: for a split read per batch (ArrayRecord files through `tfds.data_source`):
        processes that read and decode its examples (0: this process).
      folder_options: for "folder:PATH": `val_fraction`, `seed`, `workers` of
        `data.stream.load_folder`.

    Returns:
      An `ArrayDataset` (in memory), a `SourceDataset` (read per batch) or a
      `FolderStream` (a folder, decoded in worker processes).

    Raises:
      ValueError: unknown name (with the closest names) or split, images of varying size
        without `image_size`, bad `channels`.
      DatasetNotPreparedError: the data are not in `data_dir` and cannot be prepared; the
        message says how to prepare them or where to put them.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grayscale), 3 (RGB) or None, got {channels!r}.")
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        if image_size is None:
            raise ValueError(f"{name}: a folder dataset needs image_size=(height, width).")
        return load_folder(name[len(FOLDER_PREFIX):], split, image_size,
                           channels=channels or 3, **(folder_options or {}))
    builder = prepared_builder(name, data_dir, download)
    image_key, label_key = builder.info.supervised_keys or ("image", "label")
    label_feature = builder.info.features[label_key]
    image_feature = builder.info.features[image_key]
    image_shape = _target_shape(name, image_feature.shape, image_size, channels)
    keep_uint8 = np.dtype(image_feature.np_dtype) == np.uint8  # 8-bit: 4x less memory
    # Encoded image files are decoded by `fit_uint8`, not by TFDS (Pillow, then a float resize).
    skip = ({image_key: tfds.decode.SkipDecoding()}
            if keep_uint8 and isinstance(image_feature, tfds.features.Image) else None)
    try:
        source = _undecoded_if_possible(builder, split, skip)
    except NotImplementedError as err:
        raise DatasetNotPreparedError(not_prepared_message(builder, str(err))) from err
    except (ValueError, KeyError) as err:
        raise ValueError(f"split {split!r} of dataset {name!r} is not valid ({err}); use one of "
                         f"{sorted(builder.info.splits) or ['train', 'test']}, optionally "
                         "sliced like 'train[:90%]'.") from err
    dataset = SourceDataset(source, int(label_feature.num_classes), image_shape,
                            f"{name}:{split}", tuple(label_feature.names), image_key, label_key,
                            workers, keep_uint8)
    if in_memory is None:
        pixel_bytes = 1 if keep_uint8 else 4
        in_memory = len(dataset) * int(np.prod(image_shape)) * pixel_bytes <= IN_MEMORY_MAX_BYTES
    return dataset.to_arrays() if in_memory else dataset


def _undecoded_if_possible(builder: tfds.core.DatasetBuilder, split: str, skip: dict | None):
    """The split's data source, its image files left undecoded (`skip`) where TFDS can
    read them so without TensorFlow; otherwise (TFDS's mock data, which encodes through
    TensorFlow) decoded by TFDS."""
    source = builder.as_data_source(split=split, decoders=skip)
    if skip is not None and len(source):
        try:
            source[0]
        except ImportError:
            source = builder.as_data_source(split=split)
    return source


def _target_shape(name, feature_shape, image_size, channels) -> tuple[int, int, int]:
    """The (H, W, C) the batches will hold, from the feature shape and the arguments."""
    shape = tuple(feature_shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if image_size is None:
        if None in shape[:2]:
            raise ValueError(f"dataset {name!r} has images of varying size {shape}; pass "
                             "image_size=(height, width) to resize them, e.g. image_size=160.")
        size = shape[:2]
    else:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"image_size must be a positive int or (height, width), got "
                             f"{image_size!r}.")
    return (int(size[0]), int(size[1]), int(channels or shape[2] or 3))
