"""TFDS builders for the datasets that ship with jaxcnn: `digits` and `shapes`.

Importing this module registers both with TFDS, so `tfds.builder("digits")`,
`tfds.data_source("shapes", ...)` and `jaxcnn.data.load` find them like any catalog
dataset. Their features are `tfds.features.Tensor` and they are written as ArrayRecord,
so preparing them needs neither the network nor TensorFlow; it takes a few seconds, on
first use, into the TFDS data directory (`data_dir`, else `$TFDS_DATA_DIR`, else
`~/tensorflow_datasets`).

- `digits` 1.0.0: the 1,797 8x8 UCI handwritten digits of `resources/digits.npz`, float32
  in [0, 1] (pixels 0..16 divided by 16); test = 20% of each class drawn with seed 0
  (1,438 train / 359 test), as `jaxcnn.data.split` draws it.
- `shapes` 1.0.0: see `jaxcnn.data.shapes`; configs `32x32` (default) and `64x64`, each
  4,000 train and 1,000 test uint8 RGB images drawn from seed 0.
"""
from __future__ import annotations

import dataclasses
import importlib.resources

import numpy as np
import tensorflow_datasets as tfds

from jaxcnn.data import shapes
from jaxcnn.data.arrays import from_arrays, split

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


class Digits(tfds.core.GeneratorBasedBuilder):
    """The UCI handwritten digits shipped in the package (no download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "8x8 float32 images in [0, 1]; 20% stratified test split, seed 0."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="1,797 8x8 handwritten digits (UCI via scikit-learn, CC BY 4.0).",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.float32),
                "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
            }),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the data ship inside the package
        path = importlib.resources.files("jaxcnn.data") / "resources" / "digits.npz"
        with path.open("rb") as f, np.load(f) as npz:
            images, labels = npz["images"], npz["labels"]
        full = from_arrays(images[..., None].astype(np.float32) / 16.0, labels, num_classes=10,
                           name="digits")
        train, test = split(full, DIGITS_TEST_FRACTION, seed=DIGITS_SPLIT_SEED)
        return {"train": self._generate_examples(train.images, train.labels),
                "test": self._generate_examples(test.images, test.labels)}

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    """How a `shapes` variant is drawn.

    Attributes:
      image_size: side of the square RGB images.
      num_train: examples in the train split.
      num_test: examples in the test split.
      seed: the train split is drawn from `[seed, 0]`, the test split from `[seed, 1]`.
    """

    image_size: int = 32
    num_train: int = 4000
    num_test: int = 1000
    seed: int = 0


class Shapes(tfds.core.GeneratorBasedBuilder):
    """Procedurally drawn geometric shapes in eight classes (see `jaxcnn.data.shapes`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Eight classes, random position, size, thickness, colour, noise."}
    BUILDER_CONFIGS = [ShapesConfig(name="32x32", image_size=32),
                       ShapesConfig(name="64x64", image_size=64)]

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return tfds.core.DatasetInfo(
            builder=self,
            description=shapes.__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(size, size, 3), dtype=np.uint8),
                "label": tfds.features.ClassLabel(names=list(shapes.CLASS_NAMES)),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # drawn, not downloaded
        config = self.builder_config
        return {"train": self._generate_examples(config.num_train, [config.seed, 0]),
                "test": self._generate_examples(config.num_test, [config.seed, 1])}

    def _generate_examples(self, num_examples, seed):
        images, labels = shapes.generate(num_examples, self.builder_config.image_size, seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}


EMBEDDED = ("digits", "shapes")
