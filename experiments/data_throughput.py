"""Input-pipeline throughput vs the LeNet-5 train step, on this machine.

Does the input pipeline keep up with training? For mnist-shaped (28x28x1 resized to
32x32x1) and cifar-shaped (32x32x3) data this measures, in images per second:
- `train step`: the jitted LeNet-5 train step alone, batch 128, data already on device;
- `memory`: `ArrayDataset.batches` (shuffled, in-memory, the default for small splits);
- `memory+device+augment`: the same, prefetched to the device with `prefetch_to_device`
  and augmented there (random flip + 4-pixel pad-and-crop, jitted);
- `stream`: `SourceDataset.batches`, decoding each batch from the source (mock data for
  the catalog shapes, real ArrayRecord files for the embedded `shapes`).
The catalog datasets are mocked with `tfds.testing.mock_data` (random images, no
download); `shapes` is prepared into a temporary data_dir.

Command:
    python experiments/data_throughput.py [--examples 8192] [--batch-size 128]
Prints one line per measurement and the ratio pipeline / train step (target >= 5x).
"""
import argparse
import tempfile
import time

import jax
import numpy as np
import optax
import tensorflow_datasets as tfds

from jaxcnn import data, models, train
from jaxcnn.data import augment


def images_per_second(run, images: int, repeats: int = 3) -> float:
    """Best of `repeats` timings of `run()`, which processes `images` images."""
    run()  # warm-up: compilation, caches
    best = min(_timed(run) for _ in range(repeats))
    return images / best


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def train_step_rate(input_shape, batch_size: int, steps: int = 20) -> float:
    """Images/s of the LeNet-5 train step on a fixed on-device batch."""
    model = models.create("lenet5", input_shape=input_shape)
    state = train.create_state(model, optax.adam(1e-3), seed=0)
    rng = np.random.default_rng(0)
    batch = jax.device_put({"image": rng.uniform(size=(batch_size, *input_shape)).astype(np.float32),
                            "label": rng.integers(0, 10, batch_size).astype(np.int32),
                            "mask": np.ones(batch_size, bool)})
    step = jax.jit(train.train_step)
    holder = {"state": state}

    def run():
        for _ in range(steps):
            holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics)

    return images_per_second(run, steps * batch_size)


def pipeline_rates(dataset, batch_size: int) -> dict[str, float]:
    """Images/s of host batches, and of batches prefetched and augmented on device."""
    size = dataset.image_shape[0]
    aug = augment.Sequential([augment.RandomFlip(), augment.RandomCrop(size, size, padding=4)])
    n = dataset.num_batches(batch_size, drop_remainder=True) * batch_size

    def host():
        for _ in dataset.batches(batch_size, shuffle=True, seed=0, epoch=1, drop_remainder=True):
            pass

    def device():
        key = jax.random.key(0)
        batches = dataset.batches(batch_size, shuffle=True, seed=0, epoch=1, drop_remainder=True)
        for step, batch in enumerate(data.prefetch_to_device(batches)):
            out = aug(jax.random.fold_in(key, step), batch["image"])
        jax.block_until_ready(out)

    return {"memory" if isinstance(dataset, data.ArrayDataset) else "stream":
            images_per_second(host, n), "+device+augment": images_per_second(device, n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=8192, help="mock examples per dataset")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    bs = args.batch_size
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {bs}")
    with tempfile.TemporaryDirectory() as data_dir:
        with tfds.testing.mock_data(num_examples=args.examples):
            mnist = data.load("mnist", "train", image_size=32, data_dir=data_dir, in_memory=False)
            cifar = data.load("cifar10", "train", data_dir=data_dir, in_memory=False)
            cases = [("mnist-shaped (mock)", (32, 32, 1), mnist), ("cifar-shaped (mock)",
                                                                    (32, 32, 3), cifar)]
            rows = [(label, shape, pipeline_rates(ds.to_arrays(), bs), pipeline_rates(ds, bs))
                    for label, shape, ds in cases]
        shapes_stream = data.load("shapes", "train", data_dir=data_dir, in_memory=False)
        rows.append(("shapes 32x32x3 (ArrayRecord)", (32, 32, 3),
                     pipeline_rates(shapes_stream.to_arrays(), bs), pipeline_rates(shapes_stream, bs)))
    for label, shape, memory, stream in rows:
        step = train_step_rate(shape, bs)
        print(f"{label}: train step {step:,.0f} img/s")
        for name, rate in [("memory", memory["memory"]),
                           ("memory+device+augment", memory["+device+augment"]),
                           ("stream", stream["stream"]),
                           ("stream+device+augment", stream["+device+augment"])]:
            print(f"    {name:<24} {rate:>12,.0f} img/s   {rate / step:6.1f}x the train step")


if __name__ == "__main__":
    main()
