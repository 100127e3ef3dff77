"""The procedural `shapes` dataset: coloured geometric shapes for seeing what a CNN learns.

Eight classes, in label order: vertical line, horizontal line, diagonal line, square
outline, filled square, circle (outline), cross, triangle (filled, apex up). Each
image is `image_size` x `image_size` RGB uint8 (default 32x32x3) with:
- a background colour drawn from [0, 0.4] per channel and a shape colour from [0.6, 1],
  swapped with probability 1/2 (dark on light or light on dark, always >= 0.2 apart);
- a shape extent of 35-80% of the image, a stroke thickness of 1 pixel to a tenth of the
  image, at a random position where the whole shape fits (diagonals rise or fall);
- Gaussian pixel noise with a standard deviation drawn from [0, 0.05].
Labels are balanced (each class appears `num_examples / 8` times, in shuffled order).
`generate(n, size, seed)` is a pure function of its arguments: the same seed gives the
same images on every machine (NumPy's PCG64 stream); the TFDS builder
(`jaxcnn.data.builders.Shapes`) draws its train and test splits from seeds
`[seed, 0]` and `[seed, 1]`, and bumps its version whenever this drawing changes.
"""
from __future__ import annotations

import numpy as np

CLASS_NAMES = ("vertical_line", "horizontal_line", "diagonal_line", "square_outline",
               "filled_square", "circle", "cross", "triangle")


def shape_mask(label: int, dx: np.ndarray, dy: np.ndarray, half: float, thickness: float,
               rising: bool) -> np.ndarray:
    """Pixels covered by one shape, given pixel offsets from the shape's centre.

    Args:
      label: the class index (see `CLASS_NAMES`).
      dx: (H, W) horizontal offsets of pixel centres from the shape centre.
      dy: (H, W) vertical offsets (growing downwards).
      half: half the shape's extent, in pixels.
      thickness: stroke width, in pixels.
      rising: for the diagonal line, whether it rises to the right.

    Returns:
      (H, W) bool mask.
    """
    stroke = thickness / 2
    box = np.maximum(np.abs(dx), np.abs(dy))
    if label == 0:
        return (np.abs(dx) <= stroke) & (np.abs(dy) <= half)
    if label == 1:
        return (np.abs(dy) <= stroke) & (np.abs(dx) <= half)
    if label == 2:
        along = (dx - dy if rising else dx + dy) / np.sqrt(2)
        across = (dx + dy if rising else dx - dy) / np.sqrt(2)
        return (np.abs(across) <= stroke) & (np.abs(along) <= half)
    if label == 3:
        return (box <= half) & (box >= half - thickness)
    if label == 4:
        return box <= half
    if label == 5:
        radius = np.hypot(dx, dy)
        return (radius <= half) & (radius >= half - thickness)
    if label == 6:
        return (((np.abs(dx) <= stroke) & (np.abs(dy) <= half))
                | ((np.abs(dy) <= stroke) & (np.abs(dx) <= half)))
    if label == 7:
        return (np.abs(dy) <= half) & (np.abs(dx) <= (dy + half) / 2)
    raise ValueError(f"label must lie in [0, {len(CLASS_NAMES)}), got {label}.")


def draw(label: int, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Draws one image of class `label` with random placement, colours and noise.

    Args:
      label: the class index.
      image_size: side of the square image, in pixels (>= 8).
      rng: the random generator (advanced by this call).

    Returns:
      (image_size, image_size, 3) uint8 image.
    """
    extent = rng.uniform(0.35, 0.8) * image_size
    half = extent / 2
    thickness = rng.uniform(1.0, max(1.5, image_size / 10))
    cx, cy = rng.uniform(half + 0.5, image_size - half - 0.5, size=2)
    rising = bool(rng.integers(2))
    background = rng.uniform(0.0, 0.4, 3)
    foreground = rng.uniform(0.6, 1.0, 3)
    if rng.integers(2):
        background, foreground = foreground, background
    noise_std = rng.uniform(0.0, 0.05)
    centres = np.arange(image_size) + 0.5
    dx, dy = centres[None, :] - cx, centres[:, None] - cy
    mask = shape_mask(label, dx, dy, half, thickness, rising)
    image = np.where(mask[..., None], foreground, background)
    image = image + rng.normal(0.0, noise_std, image.shape)
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def generate(num_examples: int, image_size: int = 32, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Generates a balanced set of shape images.

    Args:
      num_examples: how many images.
      image_size: side of each square image (>= 8).
      seed: anything `np.random.default_rng` accepts.

    Returns:
      `(images, labels)`: (N, S, S, 3) uint8 and (N,) int64 in [0, 8).
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels to draw a shape, got {image_size}.")
    if num_examples < 1:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples}.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_examples) % len(CLASS_NAMES))
    images = np.stack([draw(int(label), image_size, rng) for label in labels])
    return images, labels
