"""Image parameterizations: what gradient ascent optimizes, and how it becomes an image.

Contract: a `Parameterization` has `shape` (N, H, W, C) of the batch of images it makes,
`init(key) -> params` (a pytree) and `to_image(params) -> images` in [0, 1]. Built by
`pixels` (raw pixels through a sigmoid or a clip) or `fourier` (a spectrum scaled by
1/frequency, with decorrelated colour for RGB as in Lucid); any channel count works, so
grayscale models such as LeNet-5 are covered. `check_fits` refuses a parameterization
whose images do not fit a model's input.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# Square root of the colour correlation of ImageNet pixels (Lucid, `color_correlation_svd_sqrt`):
# optimizing in this basis decorrelates the colours, which gives less saturated pictures.
_COLOR_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02],
                                    [0.27, 0.00, -0.05],
                                    [0.27, -0.09, 0.03]], np.float32)
_COLOR_NORM = np.max(np.linalg.norm(_COLOR_CORRELATION_SQRT, axis=0))


@dataclasses.dataclass(frozen=True)
class Parameterization:
    """A batch of images as a function of optimizable parameters.

    Attributes:
      shape: (N, H, W, C) of the images.
      init: `key -> params`.
      to_image: `params -> images` of `shape`, values in [0, 1].
      name: a readable description.
    """

    shape: tuple[int, int, int, int]
    init: Callable[[jax.Array], Any]
    to_image: Callable[[Any], jax.Array]
    name: str


def _check_shape(image_shape: Sequence[int], batch: int) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width, channels) of positive sizes, "
                         f"got {tuple(image_shape)}.")
    if batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch}.")
    return (batch, *shape)


def pixels(image_shape: Sequence[int], batch: int = 1, *, squash: str = "sigmoid",
           std: float = 0.01) -> Parameterization:
    """Raw pixels, mapped into [0, 1] by a sigmoid or by clipping.

    Args:
      image_shape: (H, W, C).
      batch: number of images.
      squash: "sigmoid" (params are logits, start at grey 0.5) or "clip" (params are the
        pixel values, clipped to [0, 1]; the clip stops the gradient of saturated pixels).
      std: standard deviation of the initial noise around grey.

    Returns:
      The parameterization.
    """
    shape = _check_shape(image_shape, batch)
    if squash == "sigmoid":
        return Parameterization(shape, lambda key: std * jax.random.normal(key, shape),
                                jax.nn.sigmoid, f"pixels(sigmoid, {shape})")
    if squash == "clip":
        return Parameterization(shape, lambda key: 0.5 + std * jax.random.normal(key, shape),
                                lambda p: jnp.clip(p, 0.0, 1.0), f"pixels(clip, {shape})")
    raise ValueError(f"squash must be 'sigmoid' or 'clip', got {squash!r}.")


def _frequencies(height: int, width: int) -> np.ndarray:
    """Radial frequency of each coefficient of a real 2-D FFT of an (H, W) image."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def fourier(image_shape: Sequence[int], batch: int = 1, *, decorrelate: bool | None = None,
            decay_power: float = 1.0, std: float = 0.01) -> Parameterization:
    """An image parameterized by its 2-D Fourier spectrum, scaled by 1/frequency (Lucid).

    Scaling the spectrum makes all frequencies learn at a similar rate, so ascent does not
    fill the picture with high-frequency noise first.

    Args:
      image_shape: (H, W, C); any channel count.
      batch: number of images.
      decorrelate: map the three channels through the decorrelated colour basis; None means
        "when C == 3". True with C != 3 is refused.
      decay_power: exponent of the 1/frequency scale.
      std: standard deviation of the initial spectrum.

    Returns:
      The parameterization (images through a sigmoid, grey at zero parameters).
    """
    shape = _check_shape(image_shape, batch)
    n, h, w, c = shape
    if decorrelate is None:
        decorrelate = c == 3
    if decorrelate and c != 3:
        raise ValueError(f"decorrelate=True needs 3 (RGB) channels, got image_shape={tuple(image_shape)};"
                         " use decorrelate=False for other channel counts.")
    freqs = _frequencies(h, w)
    scale = (1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power).astype(np.float32)
    scale = scale * np.sqrt(h * w)  # with irfft2's 1/(H*W): pixel scale independent of size
    spectrum_shape = (2, n, c, *freqs.shape)

    def to_image(params):
        spectrum = (params[0] + 1j * params[1]) * scale
        image = jnp.fft.irfft2(spectrum, s=(h, w))  # (N, C, H, W)
        image = jnp.transpose(image, (0, 2, 3, 1)) / 4.0
        if decorrelate:
            image = image @ (_COLOR_CORRELATION_SQRT / _COLOR_NORM).T
        return jax.nn.sigmoid(image)

    return Parameterization(shape, lambda key: std * jax.random.normal(key, spectrum_shape),
                            to_image, f"fourier({shape}, decorrelate={decorrelate})")


def check_fits(param: Parameterization, input_shape: Sequence[int], model_name: str) -> None:
    """Refuses a parameterization whose images do not fit the model's input.

    Raises:
      ValueError: naming both shapes and how to build a fitting parameterization.
    """
    made, expected = tuple(param.shape[1:]), tuple(input_shape)
    if made != expected:
        what = "channels" if made[:2] == expected[:2] else "shape"
        raise ValueError(f"the parameterization {param.name} makes images of shape {made} but "
                         f"{model_name} expects {expected} (different {what}); build it with "
                         f"image_shape={expected}.")
