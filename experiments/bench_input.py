"""Images/s of the streaming folder pipeline against tf.data and a PyTorch DataLoader.

Generates (once, under --dir) a folder of JPEGs in 10 classes, of varied sizes around
400x300 (smooth random colour fields with fine noise, so they compress like photos), then
measures in one run, on the same files and machine, the training transform to 224x224
uint8 batches of 64 (Inception's random-resized crop and a horizontal flip):
  * jaxcnn: `jaxcnn.data.stream_folder(workers=N)` (Grain worker processes, Pillow);
  * tf.data: `tf.io.decode_jpeg`, `tf.image.sample_distorted_bounding_box` with the same
    scale/ratio ranges, resize, flip, batched, AUTOTUNE parallelism and prefetch;
  * torch: a `DataLoader` (N workers) over a Dataset decoding with Pillow and applying the
    same crop and flip functions as jaxcnn (`jaxcnn.data.stream.random_resized_crop`).
Each pipeline reads one epoch (worker start-up, imports), then times the next three and
reports the best (workers kept: Grain's and the DataLoader's persist, tf.data keeps its
thread pool).
Also reported: jaxcnn's evaluation transform, 1 vs 2 workers, the same JPEGs stored in a
TFDS ArrayRecord dataset (built here without TensorFlow) read by `data.load(...,
in_memory=False, workers=N)` (decoded by TFDS, every image resized whole to 224x224), and
the share of time cnn4 training at 150x150 from the folder waits for its input
(`history["input_wait"]`).
Peers that are not installed are skipped (tensorflow-cpu, torch).

Usage: python experiments/bench_input.py [--images 3000] [--workers 2] [--dir /tmp/bench_input]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import time

import numpy as np
from PIL import Image

BATCH = 64
SIZE = 224


def make_folder(root: pathlib.Path, count: int, classes: int = 10) -> None:
    """`count` JPEGs, `classes` sub-folders, sizes around 400x300 (written once)."""
    if root.exists() and sum(1 for _ in root.rglob("*.jpg")) >= count:
        return
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        height, width = int(rng.integers(250, 350)), int(rng.integers(350, 450))
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height),
                                                           Image.Resampling.BICUBIC), np.int16)
        pixels = np.clip(smooth + rng.integers(-12, 13, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def images_per_second(epoch_batches, rounds: int = 3) -> float:
    """Reads one whole epoch (worker start-up, imports, compilation of tf.data's graph),
    then times the next `rounds` epochs one by one: the best is the steady state a
    training run sees, the others are slowed by whatever else the machine did.

    Args:
      epoch_batches: epoch number -> an iterable of that epoch's batches.
      rounds: timed epochs.
    """
    for _ in epoch_batches(1):
        pass
    rates = []
    for epoch in range(2, 2 + rounds):
        count, start = 0, time.perf_counter()
        for batch in epoch_batches(epoch):
            count += len(batch[0] if isinstance(batch, (tuple, list)) else batch["label"])
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def jaxcnn_rate(root, workers: int, training: bool = True) -> float:
    from jaxcnn.data import stream_folder
    stream = stream_folder(root, SIZE, training=training, workers=workers)
    rate = images_per_second(lambda epoch: stream.batches(
        BATCH, shuffle=training, seed=0, epoch=epoch, drop_remainder=True))
    stream.close()
    return rate


def arrayrecord_rate(root, workers: int) -> float:
    """The folder's JPEGs as a TFDS ArrayRecord dataset, read by `data.load` in workers."""
    import tensorflow_datasets as tfds
    from jaxcnn import data

    class BenchJpegs(tfds.core.GeneratorBasedBuilder):
        """The benchmark folder's JPEG files, stored as they are, with their labels."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(num_classes=10)}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, path in enumerate(sorted(pathlib.Path(root).rglob("*.jpg"))):
                yield i, {"image": path, "label": int(path.parent.name[5:])}

    data_dir = pathlib.Path(root).parent / "tfds"
    BenchJpegs(data_dir=data_dir, file_format="array_record").download_and_prepare()
    dataset = data.load("bench_jpegs", "train", image_size=SIZE, data_dir=data_dir,
                        in_memory=False, workers=workers)
    rate = images_per_second(lambda epoch: dataset.batches(
        BATCH, shuffle=True, seed=0, epoch=epoch, drop_remainder=True))
    dataset.close()
    return rate


def tf_rate(root) -> float | None:
    try:
        import tensorflow as tf
    except ImportError:
        return None
    files = sorted(str(p) for p in pathlib.Path(root).rglob("*.jpg"))
    labels = [int(pathlib.Path(f).parent.name[5:]) for f in files]

    def load(path, label):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([0, 0, 4]), area_range=(0.08, 1.0),
            aspect_ratio_range=(3 / 4, 4 / 3), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        image = tf.image.resize(tf.slice(image, begin, size), (SIZE, SIZE))
        image = tf.image.random_flip_left_right(image)
        return tf.cast(image, tf.uint8), label

    dataset = (tf.data.Dataset.from_tensor_slices((files, labels)).shuffle(len(files), seed=0)
               .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH, drop_remainder=True)
               .prefetch(tf.data.AUTOTUNE))
    return images_per_second(lambda epoch: dataset.as_numpy_iterator())


class TorchFolder:
    """A map-style Dataset: Pillow decode, jaxcnn's crop and flip, uint8 HWC arrays."""

    def __init__(self, root):
        self.files = sorted(pathlib.Path(root).rglob("*.jpg"))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        from jaxcnn.data.stream import random_resized_crop
        rng = np.random.default_rng(index)
        with Image.open(self.files[index]) as image:
            pixels = random_resized_crop(np.asarray(image.convert("RGB")), (SIZE, SIZE), rng)
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return np.ascontiguousarray(pixels), int(self.files[index].parent.name[5:])


def torch_rate(root, workers: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    loader = torch.utils.data.DataLoader(TorchFolder(root), batch_size=BATCH, shuffle=True,
                                         num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    return images_per_second(lambda epoch: loader)


def input_wait_of_training(root, workers: int) -> float:
    """cnn4 at 150x150 trained one epoch from the folder: share of time waiting for input."""
    import jaxcnn
    from jaxcnn import data, models
    train = data.stream_folder(root, 150, workers=workers)
    model = models.create("cnn4", num_classes=train.num_classes, input_shape=train.image_shape)
    _, history = jaxcnn.fit(model, train, epochs=2, batch_size=32, progress=False)
    train.close()
    return history[-1]["input_wait"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", default="/tmp/bench_input")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    root = pathlib.Path(args.dir) / f"jpegs{args.images}"
    make_folder(root, args.images)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.images} JPEGs ~400x300 -> {SIZE}x{SIZE} uint8, batches of {BATCH}")
    rows = [(f"jaxcnn stream_folder, train, {args.workers} workers",
             jaxcnn_rate(root, args.workers)),
            ("jaxcnn stream_folder, train, 1 worker", jaxcnn_rate(root, 1)),
            (f"jaxcnn stream_folder, eval, {args.workers} workers",
             jaxcnn_rate(root, args.workers, training=False)),
            (f"jaxcnn ArrayRecord (TFDS), resize, {args.workers} workers",
             arrayrecord_rate(root, args.workers)),
            ("tf.data (decode_jpeg, AUTOTUNE)", tf_rate(root)),
            (f"torch DataLoader, {args.workers} workers", torch_rate(root, args.workers))]
    for name, rate in rows:
        print(f"{name:45s} {'not installed' if rate is None else f'{rate:8.0f} images/s'}")
    if not args.skip_training:
        wait = input_wait_of_training(root, args.workers)
        print(f"cnn4 150x150 training from the folder, {args.workers} workers: input_wait "
              f"{wait:.0%}")


if __name__ == "__main__":
    main()
