"""Image folders read while training: decoded and transformed in worker processes (Grain).

Contract: `stream_folder(directory, image_size, training=...)` returns a `FolderStream`, a
dataset with the protocol `jaxcnn.fit` uses (`batches`, `num_batches`, `len`,
`image_shape`, `num_classes`, `name`, `class_names`) that never holds the images in
memory. Each batch is read when it is needed: Grain runs the reading, decoding and
transform of its examples in `workers` processes (0: in this process), prefetching ahead
of the training step. Batches hold uint8 images (8-bit on the host; the compiled step
scales them to [0, 1]); files are decoded and resized as `data.decode` says why. The
training transform is ImageNet's standard one
(random-resized crop with Inception's scale (0.08, 1) and aspect ratio (3/4, 4/3),
then a horizontal flip half of the time); the evaluation transform resizes the shorter
side to `image_size / CROP_FRACTION` and takes the center crop. Every random draw depends
only on (seed, epoch, example index), so batches are the same with any number of
workers, and a resumed run (`start_batch`) reads exactly the batches it had left. A file
that cannot be decoded is never fatal: its row is masked out (no loss, no accuracy) and
the files skipped in an epoch are named in one warning.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import warnings
import weakref
from typing import Iterator

import grain
from absl import flags
import numpy as np

from jaxcnn.data.arrays import held_out_rows
from jaxcnn.data.batching import Batch, batch_plan, count_batches, resolve_process
from jaxcnn.data.decode import UNREADABLE, crop_resize, decode, flip_in_place, single_threaded
from jaxcnn.data.folder import checked_folder, scan_folder
from jaxcnn.paths import as_path, is_remote, read_bytes

CROP_FRACTION = 0.875  # evaluation: 224 of 256, as torchvision and timm
SCALE = (0.08, 1.0)  # random-resized crop: fraction of the image area (Inception)
RATIO = (3 / 4, 4 / 3)  # and aspect ratio range
ATTEMPTS = 10  # draws before falling back to the center crop (torchvision's rule)
READ_THREADS = 1  # threads per worker (or in this process without workers) that load images


def default_workers() -> int:
    """The cores left to the host besides the training process (at least 1)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclasses.dataclass(frozen=True)
class Streamed:
    """The batches of a dataset whose examples are read one by one by `load_into(index,
    real, seed, epoch, out)` straight into their row of the batch (`pixel_dtype`), in Grain
    worker processes (`workers`; 0: this process), with the random training transform when
    `training` (see the module docstring)."""

    # Running pipelines by plan (see `batches`): a cache of worker processes, never data.
    _feeds: dict = dataclasses.field(default_factory=dict, compare=False, hash=False,
                                     repr=False, kw_only=True)

    def __post_init__(self):
        weakref.finalize(self, _close_feeds, self._feeds)  # workers end with the dataset

    def num_batches(self, batch_size: int, drop_remainder: bool) -> int:
        """How many batches `batches()` yields for these arguments."""
        return count_batches(len(self), batch_size, drop_remainder)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                epoch: int = 0, drop_remainder: bool = False, process_index: int | None = None,
                process_count: int | None = None, start_batch: int = 0) -> Iterator[Batch]:
        """Reads the dataset once; arguments and batches as `ArrayDataset.batches`, with
        the images `load` makes (uint8 for folders).

        The worker processes outlive the epoch: the next call that continues where this
        one ended (the next epoch of a training run, the next evaluation) reads from the
        same running pipeline, so workers start once per run, not once per epoch.
        """
        index, count = resolve_process(process_index, process_count)
        total = self.num_batches(batch_size, drop_remainder)
        next(batch_plan(len(self), batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                        drop_remainder=drop_remainder, process_index=index,
                        process_count=count, name=self.name), None)  # checks the arguments
        plan = _Plan(self, batch_size, shuffle, seed, drop_remainder, index, count, total)
        epoch = epoch if plan.random else 0  # without randomness every epoch is the same
        feed = self._feeds.get(plan)
        if feed is None or feed.position != (epoch, start_batch):
            if feed is not None:
                feed.close()
            feed = self._feeds[plan] = _Feed(plan, epoch, start_batch, getattr(self, "workers", 0))
        skipped = []
        try:
            for _ in range(start_batch, total):
                batch, errors = feed.next_batch()
                skipped += errors
                yield batch
        finally:
            if skipped:
                warnings.warn(f"skipped {len(skipped)} unreadable image file(s) of "
                              f"{self.name} in epoch {epoch}: {'; '.join(skipped[:10])}",
                              stacklevel=2)

    def __getstate__(self) -> dict:
        """Pickled for the worker processes without the running pipelines."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "_feeds"}

    def __setstate__(self, state: dict) -> None:
        for name, value in {**state, "_feeds": {}}.items():
            object.__setattr__(self, name, value)

    def close(self) -> None:
        """Stops the worker processes (they also stop when the dataset is collected)."""
        _close_feeds(self._feeds)



@dataclasses.dataclass(frozen=True)
class FolderStream(Streamed):
    """A folder of class sub-folders, read and transformed batch by batch.

    Attributes:
      files: the image files, in sorted path order.
      labels: the label of each file.
      num_classes: number of classes (sub-folders).
      image_shape: (H, W, C) of the images in the batches.
      name: a readable name used in messages and run records.
      class_names: the sub-folder names, label i = i-th name.
      training: the random training transform (else the evaluation one).
      workers: worker processes that decode (0: this process).
      crop_fraction: the evaluation crop's share of the shorter side; None resizes the
        whole image to `image_shape` instead (as `from_folder` does).
    """

    files: tuple[str, ...]
    labels: tuple[int, ...]
    num_classes: int
    image_shape: tuple[int, int, int]
    name: str
    class_names: tuple[str, ...]
    training: bool = True
    workers: int = 0
    crop_fraction: float | None = CROP_FRACTION
    def __len__(self) -> int:
        return len(self.files)

    def describe(self, index: int) -> str:
        """The example's file, for messages."""
        return self.files[index]

    def split(self, test_fraction: float, seed: int = 0) -> tuple[FolderStream, FolderStream]:
        """(train, held-out) parts, stratified by class as `data.split` does; the held-out
        part uses the evaluation transform.

        Args:
          test_fraction: share of each class held out, in (0, 1).
          seed: seed of the draw; the same seed always gives the same split.

        Returns:
          Two `FolderStream`s named "<name>:train" and "<name>:test".
        """
        held = held_out_rows(np.array(self.labels), self.num_classes, test_fraction, seed,
                             self.name)

        def part(rows: np.ndarray, suffix: str, training: bool) -> FolderStream:
            return dataclasses.replace(
                self, files=tuple(np.array(self.files)[rows]),
                labels=tuple(int(x) for x in np.array(self.labels)[rows]),
                name=f"{self.name}:{suffix}", training=training, _feeds={})

        return part(~held, "train", self.training), part(held, "test", False)

    pixel_dtype = np.uint8  # the batches' image type

    def load_into(self, index: int, real: bool, seed: int, epoch: int,
                  out: np.ndarray) -> tuple[int, bool, str]:
        """Reads, decodes and transforms one example into `out` (runs in a worker process).

        Args:
          index: the example.
          real: False for a padding row (nothing is read).
          seed, epoch: what the random transform depends on, with `index`.
          out: its row of the batch, uint8 (H, W, C); zeros for a padding or unreadable row.

        Returns:
          (label, mask, error: "" or the file and the reason it could not be read).
        """
        if not real:
            out.fill(0)
            return 0, False, ""
        path = self.files[index]
        try:
            pixels = decode(read_bytes(path), self.image_shape[2])
        except UNREADABLE as err:
            out.fill(0)
            reason = str(err).splitlines()[0] if str(err) else "unreadable"
            return 0, False, f"{path} ({type(err).__name__}: {reason})"
        if self.training:
            rng = np.random.default_rng([seed, epoch, index])
            random_resized_crop(pixels, self.image_shape[:2], rng, out=out)
            if rng.random() < 0.5:
                flip_in_place(out)
        elif self.crop_fraction is None:
            height, width = pixels.shape[:2]
            crop_resize(pixels, (0, 0, width, height), self.image_shape[:2], out=out)
        else:
            center_crop(pixels, self.image_shape[:2], self.crop_fraction, out=out)
        return self.labels[index], True, ""


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Which example every row of every batch holds, epoch after epoch, for one process:
    the rows of `batch_plan`, laid end to end over the epochs (picklable, for the workers).
    """

    # Not part of the key: every dataset keeps its own plans (`Streamed._feeds`).
    dataset: Streamed = dataclasses.field(repr=False, compare=False, hash=False)
    batch_size: int
    shuffle: bool
    seed: int
    drop_remainder: bool
    process_index: int
    process_count: int
    batches_per_epoch: int

    @property
    def random(self) -> bool:
        """Whether epochs differ (order or transform)."""
        return self.shuffle or getattr(self.dataset, "training", False)

    @property
    def rows(self) -> int:
        """Rows of this process in one batch."""
        return self.batch_size // self.process_count

    def __call__(self, element: int, first_epoch: int) -> dict:
        """Loads the `element`-th batch counted from the start of `first_epoch`, each row
        written in place into one array (no per-image array to allocate and stack)."""
        epoch = first_epoch + element // self.batches_per_epoch if self.random else first_epoch
        batch = element % self.batches_per_epoch
        images = np.empty((self.rows, *self.dataset.image_shape), self.dataset.pixel_dtype)
        labels, mask = np.zeros(self.rows, np.int32), np.zeros(self.rows, bool)
        errors = []
        for row in range(self.rows):
            index, real = self.example(epoch, batch, row)
            labels[row], mask[row], error = self.dataset.load_into(index, real, self.seed,
                                                                   epoch, images[row])
            if error:
                errors.append(error)
        return {"image": images, "label": labels, "mask": mask, "error": errors}

    def example(self, epoch: int, batch: int, row: int) -> tuple[int, bool]:
        """(example index, real row) of a row of this process's part of a batch."""
        position = batch * self.batch_size + self.process_index * self.rows + row
        if position >= len(self.dataset):
            return 0, False
        return int(_order(len(self.dataset), self.shuffle, self.seed, epoch)[position]), True


@functools.lru_cache(maxsize=2)
def _order(count: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """The example order of an epoch, as `batch_plan` draws it (cached per process)."""
    return np.random.default_rng([seed, epoch]).permutation(count) if shuffle else np.arange(count)


class _Feed:
    """A running Grain pipeline over `plan` from (epoch, batch); knows where it stands."""

    def __init__(self, plan: _Plan, epoch: int, start_batch: int, workers: int):
        self.plan = plan
        self.position = (epoch, start_batch)
        # Whole batches are assembled in the workers: one transfer per batch, not per image.
        dataset = (grain.MapDataset.range(start_batch, start_batch + _ENDLESS)
                   .map(functools.partial(_load_batch, plan=plan, first_epoch=epoch))
                   .to_iter_dataset(grain.ReadOptions(num_threads=READ_THREADS,
                                                      prefetch_buffer_size=2)))
        if workers > 0:
            # Grain 0.2 reads an absl flag when it starts workers and fails if the program
            # never parsed absl flags (scripts, notebooks): parse none, keeping defaults.
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
                num_workers=workers, per_worker_buffer_size=2), worker_init_fn=single_threaded)
        self.batches = iter(dataset)

    def next_batch(self) -> tuple[Batch, list[str]]:
        """The next batch and the files it could not read.

        Raises:
          RuntimeError: a worker process died (a crash in a decoder, killed for memory);
            the message names the files of the batch that was being read.
        """
        try:
            batch = next(self.batches)
        except RuntimeError as err:
            epoch, index = self.position
            rows = [self.plan.example(epoch, index, row) for row in range(self.plan.rows)]
            names = [self.plan.dataset.describe(i) for i, real in rows if real]
            raise RuntimeError(
                f"reading batch {index} of epoch {epoch} of {self.plan.dataset.name} failed: "
                f"{err} Its files: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}. "
                f"A file that crashes the decoder shows itself with workers=0.") from err
        epoch, index = self.position
        index += 1
        if index == self.plan.batches_per_epoch:
            epoch, index = (epoch + 1 if self.plan.random else epoch), 0
        self.position = (epoch, index)
        errors = [str(e) for e in batch.pop("error")]
        return batch, errors

    def close(self) -> None:
        close = getattr(self.batches, "close", None)
        if close is not None:
            close()


def _close_feeds(feeds: dict) -> None:
    for feed in feeds.values():
        feed.close()
    feeds.clear()


_ENDLESS = 1 << 40  # batches of a feed: more than any run reads


def _load_batch(element: int, plan: _Plan, first_epoch: int) -> dict:
    return plan(element, first_epoch)


def random_resized_crop(pixels: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Inception's crop: a random area fraction in SCALE and aspect ratio in RATIO (log-
    uniform), resized to `size` (H, W); the center crop after ATTEMPTS failed draws.

    Args:
      pixels: the decoded image (H, W, C).
      size: (height, width) of the result.
      rng: the example's generator.
      out: where to write the result (see `decode.crop_resize`).

    Returns:
      The crop, resized (`decode.crop_resize`).
    """
    height, width = pixels.shape[:2]
    area = width * height
    for _ in range(ATTEMPTS):
        target = area * rng.uniform(*SCALE)
        ratio = np.exp(rng.uniform(np.log(RATIO[0]), np.log(RATIO[1])))
        w = int(round(np.sqrt(target * ratio)))
        h = int(round(np.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return crop_resize(pixels, (left, top, left + w, top + h), size, out)
    return center_crop(pixels, size, fraction=1.0, out=out)


def center_crop(pixels: np.ndarray, size: tuple[int, int], fraction: float = CROP_FRACTION,
                out: np.ndarray | None = None) -> np.ndarray:
    """The evaluation transform: the central region that, with the shorter side scaled to
    `size / fraction`, is `size` (H, W), resized to `size` in one step.

    Args:
      pixels: the decoded image (H, W, C).
      size: (height, width) of the result.
      fraction: the crop's share of the (scaled) shorter side.
      out: where to write the result (see `decode.crop_resize`).

    Returns:
      The crop, resized (`decode.crop_resize`).
    """
    height, width = pixels.shape[:2]
    scale = min(width / (size[1] / fraction), height / (size[0] / fraction))
    crop_w = max(1, int(round(size[1] * scale)))
    crop_h = max(1, int(round(size[0] * scale)))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return crop_resize(pixels, (left, top, left + crop_w, top + crop_h), size, out)


def stream_folder(directory: str | pathlib.Path, image_size: int | tuple[int, int], *,
                  training: bool = True, channels: int = 3, workers: int | None = None,
                  follow_symlinks: bool = False,
                  crop_fraction: float | None = CROP_FRACTION) -> FolderStream:
    """A folder of class sub-folders (any mix of JPEG/PNG/...) read while training.

    Args:
      directory: the folder holding one sub-folder of images per class.
      image_size: (H, W) of the batches' images (or HxH for an int).
      training: the random training transform; False: resize and center crop.
      channels: 3 (RGB) or 1 (grayscale); every image is converted.
      workers: decoding processes; default `default_workers()`; 0 decodes in this process.
      follow_symlinks: also read files whose symbolic links lead out of `directory`.
      crop_fraction: evaluation crop (see `FolderStream`); None: the whole image resized.

    Returns:
      A `FolderStream`.

    Raises:
      ValueError: a missing folder, no class sub-folders, an empty class, bad arguments.
    """
    root = checked_folder(directory, channels)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(n, int) and n > 0 for n in size):
        raise ValueError(f"image_size must be a positive int or (height, width), got "
                         f"{image_size!r}.")
    workers = default_workers() if workers is None else workers
    cores = os.cpu_count() or 1
    if not isinstance(workers, int) or not 0 <= workers <= cores:
        raise ValueError(f"workers must be an int from 0 to {cores} (the cores of this "
                         f"machine), got {workers!r}.")
    class_names, files = scan_folder(root, follow_symlinks)
    return FolderStream(tuple(str(p) for p, _ in files), tuple(label for _, label in files),
                        len(class_names), (*size, channels), root.name, tuple(class_names),
                        training, workers, crop_fraction)


FOLDER_PREFIX = "folder:"  # `data.load("folder:PATH")`, `jaxcnn train --dataset folder:PATH`


def load_folder(directory: str | pathlib.Path, split: str, image_size: int | tuple[int, int], *,
                val_fraction: float = 0.2, seed: int = 0, channels: int = 3,
                workers: int | None = None) -> FolderStream:
    """The "train" or "test" (validation) part of a folder, streamed.

    A folder with `train/` and `val/` sub-folders (ImageNet's layout) gives those;
    otherwise the folder holds the class sub-folders and `val_fraction` of each class is
    held out for validation (the same rows for the same `seed`).

    Args:
      directory: the folder.
      split: "train" (training transform) or "test"/"val"/"validation" (evaluation one).
      image_size: (H, W) of the batches' images (or HxH for an int).
      val_fraction: the share of each class held out where there is no `val/` folder.
      seed: seed of that split.
      channels: 3 (RGB) or 1 (grayscale).
      workers: decoding processes (see `stream_folder`).

    Returns:
      A `FolderStream`.
    """
    if split not in ("train", "test", "val", "validation"):
        raise ValueError(f"split must be 'train' or 'test' (also 'val'/'validation') for a "
                         f"folder dataset, got {split!r}.")
    root = as_path(directory) if is_remote(directory) else pathlib.Path(directory)
    training = split == "train"
    if (root / "train").is_dir() and (root / "val").is_dir():
        return stream_folder(root / ("train" if training else "val"), image_size,
                             training=training, channels=channels, workers=workers)
    whole = stream_folder(root, image_size, channels=channels, workers=workers)
    train, held_out = whole.split(val_fraction, seed)
    return train if training else held_out
