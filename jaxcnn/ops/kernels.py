"""Hand-made image filters (the classic "intuitive explanation of ConvNets" table).

Contract:
    * Every function returns a float32 ``jnp`` array in HWIO layout of shape
      ``(k, k, channels, channels)`` that applies the 2D filter to each channel
      independently (zero weights across channels), ready for ``conv2d`` with
      ``groups=1``: ``conv2d(gray, kernels.sobel_x())`` or
      ``conv2d(rgb, kernels.sharpen(channels=3), padding="SAME")``.
    * ``conv2d`` computes cross-correlation, as every deep-learning framework
      does, so the matrices below are applied exactly as written (no flip).
      For the symmetric filters this makes no difference; ``sobel_x`` then
      responds positively where intensity increases to the right.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.ops.shapes import is_int, positive_int

_EDGE_DETECT = {
    1: [[1, 0, -1], [0, 0, 0], [-1, 0, 1]],
    2: [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    3: [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
}


def per_channel(matrix: np.ndarray, channels: int = 1) -> jax.Array:
    """Turns a 2D filter into an HWIO kernel acting on each channel separately.

    Args:
        matrix: ``(kh, kw)`` filter.
        channels: Number of input (= output) channels.

    Returns:
        float32 ``(kh, kw, channels, channels)`` with ``matrix`` on the channel
        diagonal and zeros elsewhere.

    Raises:
        ValueError: If ``matrix`` is not 2-D or ``channels`` is not positive.
    """
    channels = positive_int(channels, "channels")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(
            f"per_channel: matrix must be a 2-D filter (kh, kw), got shape {matrix.shape}."
        )
    kernel = np.zeros(matrix.shape + (channels, channels), dtype=np.float32)
    for c in range(channels):
        kernel[:, :, c, c] = matrix
    return jnp.asarray(kernel)


def identity(channels: int = 1) -> jax.Array:
    """3x3 identity filter (centre 1, rest 0): output equals input.

    Args:
        channels: Number of channels.

    Returns:
        ``(3, 3, channels, channels)`` float32 kernel.
    """
    m = np.zeros((3, 3))
    m[1, 1] = 1.0
    return per_channel(m, channels)


def edge_detect(variant: int = 1, channels: int = 1) -> jax.Array:
    """One of the three edge-detection filters of the classic table.

    Args:
        variant: 1: ``[[1,0,-1],[0,0,0],[-1,0,1]]``; 2: the 4-neighbour
            Laplacian ``[[0,1,0],[1,-4,1],[0,1,0]]``; 3: the 8-neighbour
            Laplacian ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]``.
        channels: Number of channels.

    Returns:
        ``(3, 3, channels, channels)`` float32 kernel.

    Raises:
        ValueError: If ``variant`` is not 1, 2 or 3.
    """
    if not is_int(variant) or int(variant) not in _EDGE_DETECT:
        raise ValueError(
            f"edge_detect: variant must be 1, 2 or 3, got {variant!r}; see the docstring "
            "for the three matrices."
        )
    return per_channel(np.array(_EDGE_DETECT[int(variant)]), channels)


def sharpen(channels: int = 1) -> jax.Array:
    """Sharpen filter ``[[0,-1,0],[-1,5,-1],[0,-1,0]]`` (identity minus Laplacian).

    Args:
        channels: Number of channels.

    Returns:
        ``(3, 3, channels, channels)`` float32 kernel.
    """
    return per_channel(np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]), channels)


def box_blur(size: int = 3, channels: int = 1) -> jax.Array:
    """Box (mean) blur: ``ones((size, size)) / size**2``.

    Args:
        size: Filter side length (positive).
        channels: Number of channels.

    Returns:
        ``(size, size, channels, channels)`` float32 kernel.
    """
    size = positive_int(size, "size")
    return per_channel(np.full((size, size), 1.0 / size**2), channels)


def gaussian_blur(size: int = 3, sigma: Optional[float] = None, channels: int = 1) -> jax.Array:
    """Gaussian blur, normalised to sum to 1.

    With the defaults (``size=3, sigma=None``) this is the table's binomial
    filter ``[[1,2,1],[2,4,2],[1,2,1]] / 16``. Otherwise it is a sampled
    Gaussian ``exp(-(i**2 + j**2) / (2 sigma**2))`` on integer offsets from the
    centre, normalised; ``sigma=None`` then uses OpenCV's rule
    ``0.3 * ((size - 1) / 2 - 1) + 0.8``.

    Args:
        size: Odd filter side length.
        sigma: Standard deviation in pixels (positive) or None.
        channels: Number of channels.

    Returns:
        ``(size, size, channels, channels)`` float32 kernel.

    Raises:
        ValueError: If ``size`` is not a positive odd int or ``sigma`` is not positive.
    """
    size = positive_int(size, "size")
    if size % 2 == 0:
        raise ValueError(
            f"gaussian_blur: size must be odd so the filter has a centre, got {size}; "
            f"use size={size + 1} or size={size - 1}."
        )
    if sigma is None and size == 3:
        return per_channel(np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0, channels)
    if sigma is None:
        sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
    if not sigma > 0:
        raise ValueError(f"gaussian_blur: sigma must be positive, got {sigma!r}; try sigma=1.0.")
    offsets = np.arange(size) - size // 2
    g = np.exp(-(offsets**2) / (2.0 * float(sigma) ** 2))
    m = np.outer(g, g)
    return per_channel(m / m.sum(), channels)


def sobel_x(channels: int = 1) -> jax.Array:
    """Horizontal-gradient Sobel filter ``[[-1,0,1],[-2,0,2],[-1,0,1]]``.

    Args:
        channels: Number of channels.

    Returns:
        ``(3, 3, channels, channels)`` float32 kernel; responds to vertical edges.
    """
    return per_channel(np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]), channels)


def sobel_y(channels: int = 1) -> jax.Array:
    """Vertical-gradient Sobel filter, the transpose of :func:`sobel_x`.

    Args:
        channels: Number of channels.

    Returns:
        ``(3, 3, channels, channels)`` float32 kernel; responds to horizontal edges.
    """
    return per_channel(np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]), channels)


__all__ = [
    "box_blur",
    "edge_detect",
    "gaussian_blur",
    "identity",
    "per_channel",
    "sharpen",
    "sobel_x",
    "sobel_y",
]
