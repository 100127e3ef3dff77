"""Datasets and batches: TFDS catalog datasets, embedded datasets, the user's own images.

Every dataset here has one protocol, which `jaxcnn.fit` and the train/eval steps use:
`batches(batch_size, *, shuffle, seed, epoch, drop_remainder, process_index,
process_count, start_batch)` yielding `{"image": NHWC float32 in [0, 1] or uint8,
"label": int32, "mask": bool}` (uint8 images are scaled inside the compiled step),
`num_batches(batch_size, drop_remainder)`, `image_shape`, `num_classes`, `name`, `len()`.

- `load(name, split)`: any TFDS image-classification dataset, or the embedded `digits`
  and `shapes`, read through `tfds.data_source` (no TensorFlow).
- `from_arrays(images, labels)`, `from_folder(directory)`: the user's own data in memory
  (uint8 images stay 8-bit; `unit_float` gives them as float32 in [0, 1]).
- `stream_folder(directory, image_size)`: a folder read while training, decoded and
  augmented (ImageNet's crops) in worker processes by Grain.
- `shard_for_pmap`, `shard_batch`, `prefetch_to_device`: batches placed for pmap,
  sharded jit, or ahead of time on the device.
- `jaxcnn.data.augment`: jitted augmentations for training batches.
"""
from __future__ import annotations

from jaxcnn.data import augment, builders, shapes
from jaxcnn.data.arrays import (ArrayDataset, convert_channels, from_arrays, resize_images,
                                split, unit_float)
from jaxcnn.data.batching import (Batch, batch_sharding, prefetch_to_device, shard_batch,
                                  shard_for_pmap)
from jaxcnn.data.catalog import DatasetNotPreparedError, SourceDataset, catalog_names, load
from jaxcnn.data.digits import digits
from jaxcnn.data.folder import from_folder
from jaxcnn.data.stream import FolderStream, stream_folder


def names() -> list[str]:
    """The embedded dataset names; `load` also takes any name of `catalog_names()`."""
    return list(builders.EMBEDDED)


__all__ = ["ArrayDataset", "Batch", "DatasetNotPreparedError", "FolderStream", "SourceDataset",
           "augment",
           "batch_sharding", "builders", "catalog_names", "convert_channels", "digits",
           "from_arrays", "from_folder", "load", "names", "prefetch_to_device",
           "resize_images", "shapes", "shard_batch", "shard_for_pmap", "split",
           "stream_folder", "unit_float"]
