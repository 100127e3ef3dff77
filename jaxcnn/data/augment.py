"""Data augmentation as jitted pure functions of an explicit key, run on the device.

Contract: an augmentation is a frozen (hashable) dataclass called as
`augmentation(key, images) -> images` on a float NHWC batch. It splits `key` into one key
per image and `jax.vmap`s its per-image transform, so the same key always gives the same
batch and every image gets its own random draw. Calls are compiled once per
(augmentation, shape) and may also be traced inside a jitted train step. Augment
training batches only: the engine folds the step into the key
(`jax.random.fold_in(key, step)`) and applies `augment(key, batch["image"])` before the
forward pass. Names and ranges follow Keras preprocessing layers:

- `RandomRotation(factor)`: angle in `factor * 2pi` (float f means [-f, f]).
- `RandomTranslation(height_factor, width_factor)`: shift as a fraction of H and W.
- `RandomZoom(height_factor, width_factor=None)`: scale 1 + factor; positive zooms out.
- `RandomFlip(mode)`: "horizontal", "vertical" or "horizontal_and_vertical", p = 1/2.
- `RandomBrightness(factor)`: adds factor * (value range) and clips to the range.
- `RandomContrast(factor)`: scales deviations from each channel's mean by 1 +- factor.
- `RandomCrop(height, width, padding)`: pads `padding` pixels per side, crops at random.
- `Sequential(layers)`: applies them in order, one sub-key each.
- `Normalization(mean, variance)`: `(x - mean) / sqrt(variance)`, no key; apply it to
  training AND evaluation images (`Normalization.adapt(images)` measures the statistics).
Geometric transforms resample bilinearly; uncovered pixels follow `fill_mode` ("reflect",
"constant", "nearest", "wrap", "mirror") as `jax.scipy.ndimage.map_coordinates` does.
At zero strength every augmentation is the identity.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.data.arrays import unit_float

FILL_MODES = ("reflect", "constant", "nearest", "wrap", "mirror")


def _range(name: str, factor, lowest: float = -math.inf) -> tuple[float, float]:
    """Keras factor convention: f -> (-f, f); (lower, upper) kept. Checked, as floats."""
    lower, upper = (-float(factor), float(factor)) if np.isscalar(factor) else map(float, factor)
    if not lowest < lower <= upper:
        raise ValueError(f"{name} must be a float f >= 0 (meaning [-f, f]) or (lower, upper) "
                         f"with {lowest} < lower <= upper, got {factor!r}.")
    return lower, upper


def _check_images(images) -> None:
    if images.ndim != 4 or not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"images must be a float (N, H, W, C) batch, got shape {images.shape} "
                         f"dtype {images.dtype}; add a batch axis with images[None].")


@functools.partial(jax.jit, static_argnums=0)
def _apply(augmentation: "Augmentation", key: jax.Array, images: jax.Array) -> jax.Array:
    return augmentation.augment_batch(key, images)


class Augmentation:
    """Base: `__call__(key, images)` vmaps the subclass's `transform(key, image)` (one (H, W, C)
    image) over the batch, jitted."""

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """Augments a batch.

        Args:
          key: a `jax.random` key.
          images: float (N, H, W, C) batch.

        Returns:
          The augmented batch (same dtype).
        """
        _check_images(images)
        return _apply(self, key, images)

    def augment_batch(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """The traced body of `__call__`: one key per image, vmapped `transform`."""
        return jax.vmap(self.transform)(jax.random.split(key, images.shape[0]), images)


def warp(image: jax.Array, matrix: jax.Array, offset: jax.Array, fill_mode: str = "reflect",
         fill_value: float = 0.0) -> jax.Array:
    """Resamples an image: output pixel p takes input at `matrix @ (p - c) + c + offset`.

    Args:
      image: (H, W, C) float image.
      matrix: (2, 2) matrix acting on (row, column) offsets from the centre c.
      offset: (2,) shift in pixels (rows, columns).
      fill_mode: how to fill outside the input (see `FILL_MODES`).
      fill_value: the value for fill_mode "constant".

    Returns:
      The (H, W, C) resampled image, bilinear interpolation.
    """
    height, width = image.shape[:2]
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2], image.dtype)
    grid = jnp.stack(jnp.meshgrid(jnp.arange(height, dtype=image.dtype),
                                  jnp.arange(width, dtype=image.dtype), indexing="ij"))
    coords = jnp.einsum("ij,jhw->ihw", matrix.astype(image.dtype), grid - centre[:, None, None])
    coords = coords + (centre + offset.astype(image.dtype))[:, None, None]
    sample = lambda channel: jax.scipy.ndimage.map_coordinates(
        channel, list(coords), order=1, mode=fill_mode, cval=fill_value)
    return jax.vmap(sample, in_axes=2, out_axes=2)(image)


class _Geometric(Augmentation):
    """Checks `fill_mode`; subclasses declare `fill_mode` and `fill_value` after their factors."""

    def __post_init__(self):
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}.")


@dataclasses.dataclass(frozen=True)
class RandomRotation(_Geometric):
    """Rotates by an angle drawn from `factor * 2pi` (0.1 means up to +-36 degrees)."""

    factor: float | tuple[float, float] = 0.0
    fill_mode: str = "reflect"
    fill_value: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "factor", _range("RandomRotation factor", self.factor))

    def transform(self, key, image):
        lower, upper = self.factor
        angle = jax.random.uniform(key, minval=lower, maxval=upper) * 2 * jnp.pi
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        matrix = jnp.array([[cos, sin], [-sin, cos]])
        return warp(image, matrix, jnp.zeros(2), self.fill_mode, self.fill_value)


@dataclasses.dataclass(frozen=True)
class RandomTranslation(_Geometric):
    """Shifts by fractions of the height and width drawn from the two factors."""

    height_factor: float | tuple[float, float] = 0.0
    width_factor: float | tuple[float, float] = 0.0
    fill_mode: str = "reflect"
    fill_value: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "height_factor",
                           _range("RandomTranslation height_factor", self.height_factor))
        object.__setattr__(self, "width_factor",
                           _range("RandomTranslation width_factor", self.width_factor))

    def transform(self, key, image):
        (h_lo, h_hi), (w_lo, w_hi) = self.height_factor, self.width_factor
        size = jnp.array(image.shape[:2], image.dtype)
        fraction = jax.random.uniform(key, (2,), minval=jnp.array([h_lo, w_lo]),
                                      maxval=jnp.array([h_hi, w_hi]))
        return warp(image, jnp.eye(2), -fraction * size, self.fill_mode, self.fill_value)


@dataclasses.dataclass(frozen=True)
class RandomZoom(_Geometric):
    """Scales by 1 + a factor drawn per axis (positive: zoom out; width follows height
    when `width_factor` is None, keeping the aspect ratio)."""

    height_factor: float | tuple[float, float] = 0.0
    width_factor: float | tuple[float, float] | None = None
    fill_mode: str = "reflect"
    fill_value: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "height_factor",
                           _range("RandomZoom height_factor", self.height_factor, lowest=-1.0))
        if self.width_factor is not None:
            object.__setattr__(self, "width_factor",
                               _range("RandomZoom width_factor", self.width_factor, lowest=-1.0))

    def transform(self, key, image):
        h_key, w_key = jax.random.split(key)
        zoom_h = 1 + jax.random.uniform(h_key, minval=self.height_factor[0],
                                        maxval=self.height_factor[1])
        zoom_w = zoom_h
        if self.width_factor is not None:
            zoom_w = 1 + jax.random.uniform(w_key, minval=self.width_factor[0],
                                            maxval=self.width_factor[1])
        return warp(image, jnp.diag(jnp.stack([zoom_h, zoom_w])), jnp.zeros(2), self.fill_mode,
                    self.fill_value)


def flip_left_right(images: jax.Array) -> jax.Array:
    """Mirrors (N, H, W, C) images horizontally."""
    return images[:, :, ::-1]


@dataclasses.dataclass(frozen=True)
class RandomFlip(Augmentation):
    """Flips each image with probability 1/2 along the chosen axes."""

    mode: str = "horizontal"

    def __post_init__(self):
        modes = ("horizontal", "vertical", "horizontal_and_vertical")
        if self.mode not in modes:
            raise ValueError(f"RandomFlip mode must be one of {modes}, got {self.mode!r}.")

    def transform(self, key, image):
        h_key, v_key = jax.random.split(key)
        if "horizontal" in self.mode:
            image = jnp.where(jax.random.bernoulli(h_key), image[:, ::-1], image)
        if "vertical" in self.mode:
            image = jnp.where(jax.random.bernoulli(v_key), image[::-1], image)
        return image


@dataclasses.dataclass(frozen=True)
class RandomBrightness(Augmentation):
    """Adds a delta drawn from `factor * (value range)`, clipped to `value_range`."""

    factor: float | tuple[float, float] = 0.0
    value_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        object.__setattr__(self, "factor", _range("RandomBrightness factor", self.factor))

    def transform(self, key, image):
        lower, upper = self.factor
        low, high = self.value_range
        delta = jax.random.uniform(key, minval=lower, maxval=upper) * (high - low)
        return jnp.clip(image + delta.astype(image.dtype), low, high)


@dataclasses.dataclass(frozen=True)
class RandomContrast(Augmentation):
    """Scales each channel's deviation from its mean by a factor in [1 - f, 1 + f]."""

    factor: float = 0.0
    value_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if not np.isscalar(self.factor) or not 0.0 <= self.factor <= 1.0:
            raise ValueError(f"RandomContrast factor must be a float in [0, 1], got {self.factor!r}.")

    def transform(self, key, image):
        scale = 1 + jax.random.uniform(key, minval=-self.factor, maxval=self.factor)
        scale = scale.astype(image.dtype)
        mean = image.mean(axis=(0, 1), keepdims=True)
        return jnp.clip((image - mean) * scale + mean, *self.value_range)


@dataclasses.dataclass(frozen=True)
class RandomCrop(Augmentation):
    """Pads `padding` pixels on every side (`fill_mode`), then crops height x width."""

    height: int
    width: int
    padding: int = 0
    fill_mode: str = "constant"

    def __post_init__(self):
        if self.height <= 0 or self.width <= 0 or self.padding < 0:
            raise ValueError(f"RandomCrop needs height, width > 0 and padding >= 0, got "
                             f"height={self.height}, width={self.width}, padding={self.padding}.")
        if self.fill_mode not in ("constant", "reflect", "edge"):
            raise ValueError(f"RandomCrop fill_mode must be constant, reflect or edge, got "
                             f"{self.fill_mode!r}.")

    def transform(self, key, image):
        pad = self.padding
        padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=self.fill_mode)
        room = (padded.shape[0] - self.height, padded.shape[1] - self.width)
        if min(room) < 0:
            raise ValueError(f"RandomCrop of {self.height}x{self.width} does not fit images of "
                             f"{image.shape[0]}x{image.shape[1]} padded by {pad}.")
        top = jax.random.randint(key, (), 0, room[0] + 1)
        left = jax.random.randint(jax.random.fold_in(key, 1), (), 0, room[1] + 1)
        return jax.lax.dynamic_slice(padded, (top, left, 0), (self.height, self.width,
                                                              image.shape[2]))


@dataclasses.dataclass(frozen=True)
class Normalization:
    """`(images - mean) / sqrt(variance)` per channel; the same on train and eval data."""

    mean: tuple[float, ...]
    variance: tuple[float, ...]

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(m) for m in np.ravel(self.mean)))
        object.__setattr__(self, "variance", tuple(float(v) for v in np.ravel(self.variance)))
        if len(self.mean) != len(self.variance) or min(self.variance) <= 0:
            raise ValueError(f"Normalization needs one mean and one positive variance per "
                             f"channel, got mean={self.mean}, variance={self.variance}.")

    @classmethod
    def adapt(cls, images) -> "Normalization":
        """Measures per-channel mean and variance of (N, H, W, C) images (e.g. ds.images;
        uint8 images are measured as the float32 in [0, 1] the step gives the model)."""
        images = np.asarray(unit_float(np.asarray(images)), np.float64)
        return cls(images.mean(axis=(0, 1, 2)), images.var(axis=(0, 1, 2)))

    def __call__(self, images: jax.Array) -> jax.Array:
        """Normalizes a float (N, H, W, C) batch."""
        _check_images(images)
        if images.shape[-1] != len(self.mean):
            raise ValueError(f"Normalization has statistics for {len(self.mean)} channels but "
                             f"the images have {images.shape[-1]}.")
        mean = jnp.asarray(self.mean, images.dtype)
        return (images - mean) / jnp.sqrt(jnp.asarray(self.variance, images.dtype))


@dataclasses.dataclass(frozen=True)
class Sequential(Augmentation):
    """Applies augmentations (and a final `Normalization`) in order, one sub-key each."""

    layers: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        for layer in self.layers:
            if not isinstance(layer, (Augmentation, Normalization)):
                raise TypeError(f"Sequential takes augmentations and Normalization, got {layer!r}.")

    def augment_batch(self, key, images):
        for layer_key, layer in zip(jax.random.split(key, len(self.layers)), self.layers):
            images = (layer(images) if isinstance(layer, Normalization)
                      else layer.augment_batch(layer_key, images))
        return images
