"""Pretrained ImageNet weights: where each file is published, its checksum, its preprocessing.

Contract:
  * `WeightsSource(url, known_hash, preprocessing, fields)` describes one published weights
    file, like torchvision's weights enums: `models.create(name, weights=source)` downloads
    it once (`jaxcnn.download.fetch`: cached, verified, atomic, `JAXCNN_WEIGHTS_MIRROR`)
    and builds the model with the file's preprocessing and the `fields` its layout needs.
  * `IMAGENET[name]` is the official source behind `weights="imagenet"`: the
    keras.applications files for VGG16, VGG19 and ResNet50 (Keras publishes only md5 for
    them, so md5 is what is checked) and torchvision's VGG-11 and ResNet-18 (safetensors on
    the Hub, sha256); `IMAGENET_NOTOP[name]` the Keras "_notop" files, used for
    `include_top=False` (a file with its classifier loads into the base alone too).
  * `resolve(name, weights, fields)` turns a `weights` argument into (local file,
    preprocessing, extra fields) for `models.create`.
  * `imagenet_classes()` lists the 1,000 ImageNet classes (WordNet id, name) in the order of
    the networks' outputs; `decode_predictions(logits, top)` names the top classes.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
from typing import Any, Mapping

import jax
import numpy as np

from jaxcnn import download

KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
HUB = "https://huggingface.co/"


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """One published weights file.

    Attributes:
      url: where the file is published (fetched as `<mirror>/<file name>` when
        `JAXCNN_WEIGHTS_MIRROR` is set).
      known_hash: "sha256:<hex>", or "md5:<hex>" where only that is published.
      preprocessing: the input scaling the weights were trained with ("caffe", "torch"),
        see `models.preprocessing`.
      fields: model fields the file's layout needs, e.g. (("stride_in_1x1", True),).
      file_name: its name in the cache and on a mirror (default: the URL's file name; the
        Hub names every file "model.safetensors").
    """

    url: str
    known_hash: str
    preprocessing: str | None = None
    fields: tuple[tuple[str, Any], ...] = ()
    file_name: str | None = None


IMAGENET: dict[str, WeightsSource] = {
    "vgg16": WeightsSource(
        KERAS_APPLICATIONS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:64373286793e3c8b2b4e3219cbf3544b", "caffe"),
    "vgg19": WeightsSource(
        KERAS_APPLICATIONS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:cbe5617147190e668d6c5d5026f83318", "caffe"),
    "resnet50": WeightsSource(
        KERAS_APPLICATIONS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:2cb95161c43110f7111970584f804107", "caffe", (("stride_in_1x1", True),)),
    # torchvision's weights (IMAGENET1K_V1) as timm publishes them in safetensors form on the
    # Hub (VGG in timm's layout, read by `convert.from_timm_vgg`); the sha256 pins the file.
    "vgg11": WeightsSource(
        HUB + "timm/vgg11.tv_in1k/resolve/main/model.safetensors",
        "sha256:682c023808812148d4e60c76d80ad83dbeaf5d50eb1a952a0b836895003151e5", "torch",
        file_name="vgg11.tv_in1k.safetensors"),
    "resnet18": WeightsSource(
        HUB + "timm/resnet18.tv_in1k/resolve/bbd144b3e5565108aad885f145491d11bc6ce807/"
              "model.safetensors",
        "sha256:694f673df6520a3158624e8a89af086f59923ee4cd7436fe5bc3bc71d295ad81", "torch",
        file_name="resnet18.tv_in1k.safetensors"),
}
# The same networks without their classifier, for include_top=False (Keras' "_notop" files).
IMAGENET_NOTOP: dict[str, WeightsSource] = {
    "vgg16": WeightsSource(
        KERAS_APPLICATIONS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:6d6bbae143d832006294945121d1f1fc", "caffe"),
    "vgg19": WeightsSource(
        KERAS_APPLICATIONS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:253f8cb515780f3b799900260a226db6", "caffe"),
    "resnet50": WeightsSource(
        KERAS_APPLICATIONS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:4d473c1dd8becc155b73f8504c6f6626", "caffe", (("stride_in_1x1", True),)),
}

# The preprocessing of a local file, by its layout: Keras files come from keras.applications
# style training (caffe), torchvision-named arrays from torchvision's (torch).
_FILE_PREPROCESSING = {".h5": "caffe", ".safetensors": "torch", ".npz": "torch"}


def resolve(name: str, weights, fields: Mapping[str, Any]
            ) -> tuple[str, str | None, dict[str, Any]]:
    """The local weights file, its preprocessing and the model fields it needs.

    Args:
      name: the registered model name (lower case).
      weights: "imagenet", a `WeightsSource`, or the path of a local weights file.
      fields: the model fields the user gave (checked against those the file needs).

    Returns:
      (path, preprocessing, fields to set).

    Raises:
      ValueError: an unknown `weights` value (naming the valid ones), a missing file, a
        failed download, or a field that contradicts the file's layout.
    """
    if isinstance(weights, str) and weights.lower() == "imagenet":
        if name not in IMAGENET:
            raise ValueError(f"{name} has no official ImageNet weights in jaxcnn; "
                             f"weights='imagenet' works for {', '.join(sorted(IMAGENET))}. "
                             f"Other weights load from a file: weights='path/to/file'.")
        notop = not fields.get("include_top", True) and name in IMAGENET_NOTOP
        weights = (IMAGENET_NOTOP if notop else IMAGENET)[name]
    if isinstance(weights, WeightsSource):
        for field, value in weights.fields:
            if field in fields and fields[field] != value:
                raise ValueError(f"{name}: these weights need {field}={value!r}, got "
                                 f"{fields[field]!r}.")
        path = download.fetch(weights.url, weights.known_hash, name=weights.file_name)
        return str(path), weights.preprocessing, dict(weights.fields)
    path = _local_file(name, weights)
    return path, _FILE_PREPROCESSING.get(os.path.splitext(path)[1]), {}


def _local_file(name: str, weights) -> str:
    """The weights file as a string (models are hashable), refused when it is not a file."""
    try:
        path = os.fspath(weights)
    except TypeError:
        path = None
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ValueError(f"{name}: weights must be None, 'imagenet', a WeightsSource or the path "
                         f"of a weights file (.h5, .weights.h5, .safetensors, .npz), got "
                         f"{weights!r}{' (no such file)' if isinstance(path, str) else ''}.")
    return path


@functools.cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1,000 ImageNet-1k classes as (WordNet id, name), in output order.

    Names are torchvision's (unique: the two "crane" and "maillot" classes are told apart).
    """
    text = (importlib.resources.files("jaxcnn.models") / "imagenet_classes.tsv").read_text()
    return tuple(tuple(line.split("\t")) for line in text.splitlines())


def decode_predictions(logits: jax.Array, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Names the most probable ImageNet classes of each example, as keras.applications does.

    Args:
      logits: (N, 1000) outputs of an ImageNet model.
      top: how many classes per example.

    Returns:
      For each example, `top` tuples (WordNet id, class name, probability), most probable
      first.

    Raises:
      ValueError: `logits` is not (N, 1000).
    """
    logits = np.asarray(logits, np.float64)
    classes = imagenet_classes()
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(f"decode_predictions expects logits of shape (batch, {len(classes)}), "
                         f"got {logits.shape}.")
    top = max(1, min(int(top), len(classes)))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    best = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [[(*classes[i], float(p[i])) for i in row] for p, row in zip(probs, best)]
