"""The input preprocessing that pretrained weights were trained with, as a model's first step.

jaxcnn's convention is RGB float images in [0, 1]. Weights trained elsewhere expect their
own scaling: Keras' VGG16/VGG19/ResNet50 files ("caffe") take BGR images on a 0-255 scale
with the ImageNet mean subtracted, torchvision's weights ("torch") take RGB in [0, 1]
normalized with the ImageNet mean and standard deviation. A model built with
`preprocessing=<name>` applies it to its [0, 1] input before the first layer, so
`model.apply`, filter and class visualization and Grad-CAM all work on [0, 1] images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# keras.applications.imagenet_utils (mode="caffe"): per-channel means in BGR order, 0-255.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# torchvision's ImageNet normalization (RGB, [0, 1] scale).
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

PREPROCESSING = {
    "caffe": "RGB->BGR, x255, minus the ImageNet mean (Keras' VGG16/VGG19/ResNet50)",
    "torch": "minus the ImageNet mean, divided by its std (torchvision)",
}


def check_preprocessing(preprocessing: str | None, model_name: str) -> None:
    """Refuses an unknown preprocessing name, listing the known ones."""
    if preprocessing is not None and preprocessing not in PREPROCESSING:
        raise ValueError(f"{model_name}: preprocessing must be None or one of "
                         f"{', '.join(map(repr, PREPROCESSING))}, got {preprocessing!r}.")


def preprocess(x: jax.Array, preprocessing: str | None) -> jax.Array:
    """Maps RGB images in [0, 1] to the input the weights were trained on.

    Args:
      x: images (N, H, W, 3), RGB in [0, 1].
      preprocessing: None (returns `x`), "caffe" or "torch".

    Returns:
      The preprocessed images, same shape and dtype.
    """
    check_preprocessing(preprocessing, "preprocess")
    if preprocessing is None:
        return x
    if x.shape[-1] != 3:
        raise ValueError(f"{preprocessing!r} preprocessing is for RGB images (3 channels), "
                         f"got an input of shape {tuple(x.shape)}.")
    if preprocessing == "caffe":
        return x[..., ::-1] * 255.0 - jnp.asarray(CAFFE_BGR_MEAN, x.dtype)
    return (x - jnp.asarray(TORCH_MEAN, x.dtype)) / jnp.asarray(TORCH_STD, x.dtype)
