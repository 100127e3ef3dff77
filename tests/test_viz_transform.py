"""jaxcnn.viz.transform: identities at zero strength, shapes kept, SciPy references."""
import jax
import numpy as np
import pytest
import scipy.ndimage

from jaxcnn.viz import transform as T

IMAGES = jax.random.uniform(jax.random.key(0), (3, 11, 14, 2))


@pytest.mark.parametrize("transform", [T.jitter(0), T.pad(0), T.random_scale([1.0]),
                                       T.random_rotate([0.0]), T.compose([]),
                                       T.compose([T.jitter(0), T.random_rotate([0.0])])],
                         ids=["jitter", "pad", "scale", "rotate", "compose_empty", "compose"])
def test_zero_strength_is_the_identity(transform):
    np.testing.assert_array_equal(jax.jit(transform)(jax.random.key(1), IMAGES), IMAGES)


@pytest.mark.parametrize("transform", [T.jitter(3), T.pad(4), T.random_scale([0.8, 1.3]),
                                       T.random_rotate([-20.0, 30.0]), T.standard(64)],
                         ids=["jitter", "pad", "scale", "rotate", "standard"])
def test_transforms_keep_shape_and_follow_the_key(transform):
    run = jax.jit(transform)
    out = run(jax.random.key(1), IMAGES)
    assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
    np.testing.assert_array_equal(out, run(jax.random.key(1), IMAGES))
    assert not np.array_equal(out, run(jax.random.key(2), IMAGES))


def test_jitter_is_a_roll_and_pad_a_shift_with_fill():
    image = np.asarray(IMAGES[:1])
    rolled = np.asarray(T.jitter(2)(jax.random.key(4), IMAGES[:1]))
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
              if np.array_equal(np.roll(image, (dy, dx), axis=(1, 2)), rolled)]
    assert len(shifts) == 1
    padded = np.asarray(T.pad(2, value=0.25)(jax.random.key(4), IMAGES[:1]))
    full = np.pad(image, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=0.25)
    crops = [(y, x) for y in range(5) for x in range(5)
             if np.array_equal(full[:, y:y + 11, x:x + 14], padded)]
    assert len(crops) == 1


@pytest.mark.parametrize("scale, degrees", [(1.25, 0.0), (0.8, 0.0), (1.0, 30.0), (1.0, -90.0)])
def test_scale_and_rotate_match_scipy_affine_transform(scale, degrees):
    transform = (T.random_scale([scale]) if degrees == 0.0 else T.random_rotate([degrees]))
    out = np.asarray(transform(jax.random.key(0), IMAGES))
    angle = np.deg2rad(degrees)
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    centre = (np.array(IMAGES.shape[1:3]) - 1) / 2.0
    offset = centre - matrix @ centre
    for n in range(IMAGES.shape[0]):
        for c in range(IMAGES.shape[3]):
            expected = scipy.ndimage.affine_transform(np.asarray(IMAGES[n, ..., c], np.float64), matrix,
                                                      offset, order=1, mode="nearest")
            np.testing.assert_allclose(out[n, ..., c], expected, atol=1e-5)


def test_rotation_by_90_degrees_turns_a_square_image_clockwise():
    square = jax.random.uniform(jax.random.key(0), (1, 9, 9, 1))
    out = T.random_rotate([90.0])(jax.random.key(0), square)
    np.testing.assert_allclose(out[0, ..., 0], np.rot90(np.asarray(square[0, ..., 0]), k=-1), atol=1e-5)


def test_bad_strengths_are_refused():
    with pytest.raises(ValueError, match="jitter pixels must be >= 0, got -1"):
        T.jitter(-1)
    with pytest.raises(ValueError, match="scales must be a non-empty list of positive factors"):
        T.random_scale([1.0, 0.0])
    with pytest.raises(ValueError, match="degrees must be a non-empty list"):
        T.random_rotate([])
