"""Tests for the hand-made filters in ``jaxcnn.ops.kernels``.

Checks the exact matrices of the classic table, the HWIO per-channel layout,
and their effect through ``conv2d`` (cross-correlation, matrices as written)
against the NumPy reference.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.ops import conv2d, kernels
from tests.reference import conv2d_ref

TABLE = {
    "identity": (kernels.identity, {}, [[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "edge1": (kernels.edge_detect, {"variant": 1}, [[1, 0, -1], [0, 0, 0], [-1, 0, 1]]),
    "edge2": (kernels.edge_detect, {"variant": 2}, [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "edge3": (kernels.edge_detect, {"variant": 3}, [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "sharpen": (kernels.sharpen, {}, [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "box": (kernels.box_blur, {}, np.ones((3, 3)) / 9),
    "gaussian": (kernels.gaussian_blur, {}, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16),
    "sobel_x": (kernels.sobel_x, {}, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "sobel_y": (kernels.sobel_y, {}, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
}


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("channels", [1, 3])
def test_table_matrices_and_layout(name, channels):
    fn, kwargs, matrix = TABLE[name]
    k = fn(channels=channels, **kwargs)
    assert isinstance(k, jnp.ndarray) and k.dtype == jnp.float32
    assert k.shape == (3, 3, channels, channels)
    expected = np.zeros((3, 3, channels, channels))
    for c in range(channels):
        expected[:, :, c, c] = matrix
    np.testing.assert_allclose(np.asarray(k), expected, rtol=1e-7, atol=1e-7)


def test_sobel_y_is_transpose_of_sobel_x():
    np.testing.assert_array_equal(
        np.asarray(kernels.sobel_y())[:, :, 0, 0], np.asarray(kernels.sobel_x())[:, :, 0, 0].T
    )


@pytest.mark.parametrize("name", sorted(TABLE))
def test_filters_through_conv2d_match_reference(name):
    fn, kwargs, _ = TABLE[name]
    rgb = np.random.default_rng(0).uniform(size=(2, 6, 7, 3)).astype(np.float32)
    k = fn(channels=3, **kwargs)
    y = conv2d(rgb, k, padding="SAME")
    assert y.shape == rgb.shape
    expected = conv2d_ref(rgb, np.asarray(k), padding="SAME")
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_channels_are_filtered_independently():
    rgb = np.zeros((1, 5, 5, 3), np.float32)
    rgb[..., 1] = np.arange(25, dtype=np.float32).reshape(5, 5)
    y = np.asarray(conv2d(rgb, kernels.sharpen(channels=3), padding="SAME"))
    np.testing.assert_array_equal(y[..., 0], 0.0)
    np.testing.assert_array_equal(y[..., 2], 0.0)


def test_identity_and_blur_semantics():
    img = np.random.default_rng(1).uniform(size=(1, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(conv2d(img, kernels.identity(), padding="SAME")), img, rtol=1e-7)
    const = np.full((1, 5, 5, 1), 2.0, np.float32)
    for k in (kernels.box_blur(), kernels.gaussian_blur(), kernels.gaussian_blur(5), kernels.box_blur(4)):
        np.testing.assert_allclose(np.asarray(conv2d(const, k)), 2.0, rtol=1e-6)
    edges = [kernels.edge_detect(v) for v in (1, 2, 3)] + [kernels.sobel_x(), kernels.sobel_y()]
    for k in edges:
        np.testing.assert_allclose(np.asarray(conv2d(const, k)), 0.0, atol=1e-6)


def test_sobel_x_on_grayscale_step_edge():
    # Dark left half, bright right half: cross-correlation with sobel_x as
    # written gives a positive response (4 = 1 + 2 + 1) at the vertical edge.
    img = np.zeros((1, 5, 6, 1), np.float32)
    img[:, :, 3:, :] = 1.0
    y = np.asarray(conv2d(img, kernels.sobel_x()))[0, :, :, 0]
    np.testing.assert_array_equal(y, np.tile([0, 4, 4, 0], (3, 1)))
    assert np.all(np.asarray(conv2d(img, kernels.sobel_y())) == 0)


def test_gaussian_blur_other_sizes():
    k = np.asarray(kernels.gaussian_blur(5, sigma=1.0))[:, :, 0, 0]
    g = np.exp(-(np.arange(-2, 3) ** 2) / 2.0)
    np.testing.assert_allclose(k, np.outer(g, g) / np.outer(g, g).sum(), rtol=1e-6)
    np.testing.assert_allclose(k, k.T, rtol=1e-7)
    assert k[2, 2] == k.max()
    assert kernels.gaussian_blur(7, channels=2).shape == (7, 7, 2, 2)
    np.testing.assert_allclose(float(kernels.gaussian_blur(7).sum()), 1.0, rtol=1e-6)


def test_box_blur_size():
    k = kernels.box_blur(5, channels=2)
    assert k.shape == (5, 5, 2, 2)
    np.testing.assert_allclose(np.asarray(k)[:, :, 1, 1], 1 / 25, rtol=1e-7)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: kernels.edge_detect(4), ValueError, r"variant must be 1, 2 or 3, got 4"),
        (lambda: kernels.sharpen(channels=0), ValueError, r"channels must be a positive int, got 0"),
        (lambda: kernels.sobel_x(channels=1.5), TypeError, r"channels must be a positive int, got 1.5"),
        (lambda: kernels.gaussian_blur(4), ValueError, r"size must be odd.*got 4"),
        (lambda: kernels.gaussian_blur(5, sigma=0.0), ValueError, r"sigma must be positive, got 0.0"),
        (lambda: kernels.box_blur(0), ValueError, r"size must be a positive int, got 0"),
    ],
)
def test_kernels_reject_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
