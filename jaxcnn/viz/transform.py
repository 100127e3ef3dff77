"""Random image transformations for robust visualizations (Lucid's transformation robustness).

Contract: a transform is a function `(key, images) -> images` on an NHWC batch that keeps
the shape (models take one input size) and draws an independent transformation per image
from `key`. At zero strength each is the identity. `compose` chains transforms, splitting
the key. Rendering calls the transform with a fresh key per step, so the picture must
activate the objective under small shifts, zooms and rotations.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Transform = Callable[[jax.Array, jax.Array], jax.Array]


def _per_image(one: Callable[[jax.Array, jax.Array], jax.Array]) -> Transform:
    """Lifts a transform of one (H, W, C) image to a batch, one key per image."""

    def apply(key: jax.Array, images: jax.Array) -> jax.Array:
        return jax.vmap(one)(jax.random.split(key, images.shape[0]), images)

    return apply


def _check_non_negative(value: float, name: str) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}.")


def jitter(pixels: int) -> Transform:
    """Shifts each image by up to `pixels` in y and x, wrapping around (a roll)."""
    _check_non_negative(pixels, "jitter pixels")

    def one(key, image):
        shift = jax.random.randint(key, (2,), -pixels, pixels + 1)
        return jnp.roll(image, (shift[0], shift[1]), axis=(0, 1))

    return _per_image(one)


def pad(width: int, value: float = 0.5) -> Transform:
    """Pads each image by `width` with `value` and crops the original size at a random offset.

    Like `jitter`, but the borders are filled with `value` instead of wrapping, as Lucid's
    pad-then-jitter does, without changing the image size.
    """
    _check_non_negative(width, "pad width")

    def one(key, image):
        padded = jnp.pad(image, ((width, width), (width, width), (0, 0)), constant_values=value)
        start = jax.random.randint(key, (2,), 0, 2 * width + 1)
        return jax.lax.dynamic_slice(padded, (start[0], start[1], 0), image.shape)

    return _per_image(one)


def sample_bilinear(image: jax.Array, ys: jax.Array, xs: jax.Array) -> jax.Array:
    """Samples an (H, W, C) image at real coordinates; outside points take the edge value."""
    h, w, _ = image.shape
    ys, xs = jnp.clip(ys, 0, h - 1), jnp.clip(xs, 0, w - 1)
    y0, x0 = jnp.floor(ys).astype(jnp.int32), jnp.floor(xs).astype(jnp.int32)
    y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[..., None], (xs - x0)[..., None]
    top = image[y0, x0] * (1 - wx) + image[y0, x1] * wx
    bottom = image[y1, x0] * (1 - wx) + image[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def _affine(image: jax.Array, scale: jax.Array, angle: jax.Array) -> jax.Array:
    """Zooms by `scale` and rotates by `angle` (radians) about the centre, bilinear, edges kept."""
    h, w, _ = image.shape
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                          indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Inverse map: the output pixel p samples the input at R(angle) (p - c) / scale + c.
    src_y = (cos * (ys - cy) - sin * (xs - cx)) / scale + cy
    src_x = (sin * (ys - cy) + cos * (xs - cx)) / scale + cx
    return sample_bilinear(image, src_y, src_x)


def random_scale(scales: Sequence[float]) -> Transform:
    """Zooms each image about its centre by a factor drawn from `scales` (1.0 = identity)."""
    table = jnp.asarray(scales, jnp.float32)
    if table.ndim != 1 or table.size == 0 or bool(jnp.any(table <= 0)):
        raise ValueError(f"scales must be a non-empty list of positive factors, got {scales!r}.")

    def one(key, image):
        return _affine(image, jax.random.choice(key, table), jnp.float32(0.0))

    return _per_image(one)


def random_rotate(degrees: Sequence[float]) -> Transform:
    """Rotates each image about its centre by an angle (degrees) drawn from `degrees`.

    Positive angles turn the picture clockwise as displayed (row 0 at the top).
    """
    table = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
    if table.ndim != 1 or table.size == 0:
        raise ValueError(f"degrees must be a non-empty list of angles, got {degrees!r}.")

    def one(key, image):
        return _affine(image, jnp.float32(1.0), jax.random.choice(key, table))

    return _per_image(one)


def compose(transforms: Sequence[Transform]) -> Transform:
    """Applies `transforms` in order, each with its own key split from the given one."""
    transforms = tuple(transforms)

    def apply(key, images):
        for k, transform in zip(jax.random.split(key, max(len(transforms), 1)), transforms):
            images = transform(k, images)
        return images

    return apply


def standard(size: int) -> Transform:
    """Lucid's default robustness for an image `size` pixels wide, scaled to that size.

    Pad by size/16, jitter by size/32, zoom by up to +-10%, rotate by up to +-5 degrees,
    jitter by size/64 again. Small images (LeNet's 32) get 2/1/.../1 pixels.
    """
    return compose([pad(max(size // 16, 1)), jitter(max(size // 32, 1)),
                    random_scale([0.9, 0.95, 1.0, 1.05, 1.1]),
                    random_rotate(list(range(-5, 6))), jitter(max(size // 64, 1))])
