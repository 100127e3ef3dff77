"""jaxcnn.data.augment: shapes kept, identities at zero strength, same key same result, and
exact transforms checked against NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.data import augment as A

KEY = jax.random.key(0)


def _images(n=4, h=8, w=8, c=3, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, h, w, c)), jnp.float32)


RANDOM = [A.RandomRotation(0.2), A.RandomTranslation(0.2, 0.3), A.RandomZoom((-0.3, 0.3)),
          A.RandomZoom(0.2, width_factor=(-0.1, 0.4)), A.RandomFlip("horizontal_and_vertical"),
          A.RandomBrightness(0.3), A.RandomContrast(0.5), A.RandomCrop(8, 8, padding=2),
          A.Sequential([A.RandomFlip(), A.RandomRotation(0.05), A.RandomCrop(8, 8, 1)])]
ZERO = [A.RandomRotation(0.0), A.RandomTranslation(0.0, 0.0), A.RandomZoom(0.0),
        A.RandomBrightness(0.0), A.RandomContrast(0.0), A.RandomCrop(8, 8, padding=0),
        A.Sequential([A.RandomRotation(0.0), A.RandomZoom(0.0, 0.0)])]


@pytest.mark.parametrize("aug", RANDOM, ids=lambda a: type(a).__name__)
def test_augmentations_keep_shape_and_dtype_and_repeat_per_key(aug):
    images = _images()
    out = aug(KEY, images)
    assert out.shape == images.shape and out.dtype == images.dtype
    np.testing.assert_array_equal(out, aug(KEY, images))
    assert not np.array_equal(out, aug(jax.random.key(1), images))
    copies = np.asarray(aug(KEY, images[:1].repeat(4, axis=0)))  # same shape: no recompile
    assert any(not np.array_equal(copies[0], other) for other in copies[1:])  # one draw per image


@pytest.mark.parametrize("aug", ZERO, ids=lambda a: type(a).__name__)
def test_zero_strength_is_the_identity(aug):
    images = _images()
    np.testing.assert_allclose(aug(KEY, images), images, atol=1e-6)


def test_flip_twice_is_the_identity():
    images = _images()
    np.testing.assert_array_equal(A.flip_left_right(A.flip_left_right(images)), images)
    flip = A.RandomFlip("horizontal_and_vertical")
    np.testing.assert_array_equal(flip(KEY, flip(KEY, images)), images)
    flipped = flip(KEY, images)
    for out, image in zip(np.asarray(flipped), np.asarray(images)):
        assert any(np.array_equal(out, f(image)) for f in
                   (lambda x: x, np.fliplr, np.flipud, lambda x: np.flipud(np.fliplr(x))))


def test_quarter_turn_rotation_equals_numpy_rot90():
    images = _images(n=2)
    out = A.RandomRotation((0.25, 0.25))(KEY, images)
    np.testing.assert_allclose(out, np.rot90(np.asarray(images), k=1, axes=(1, 2)), atol=1e-5)


def test_integer_translation_equals_a_shifted_array():
    images = _images(n=2)
    # 0.25 of 8 rows and -0.125 of 8 columns: down 2, left 1, zeros shifted in.
    out = A.RandomTranslation((0.25, 0.25), (-0.125, -0.125), fill_mode="constant")(KEY, images)
    expected = np.zeros_like(np.asarray(images))
    expected[:, 2:, :-1] = np.asarray(images)[:, :-2, 1:]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_zoom_out_by_two_samples_every_other_pixel_around_the_centre():
    images = _images(n=1, h=9, w=9)
    out = A.RandomZoom((1.0, 1.0), fill_mode="constant")(KEY, images)
    np.testing.assert_allclose(out[0, 2:7, 2:7], np.asarray(images)[0, ::2, ::2], atol=1e-5)


def test_brightness_and_contrast_match_numpy():
    images = _images()
    out = A.RandomBrightness((0.1, 0.1))(KEY, images)
    np.testing.assert_allclose(out, np.clip(np.asarray(images) + 0.1, 0, 1), atol=1e-6)
    contrast = A.RandomContrast(0.5)
    out = np.asarray(contrast(KEY, images))
    x = np.asarray(images)
    mean = x.mean(axis=(1, 2), keepdims=True)
    scale = ((out - mean) / (x - mean))[:, 0, 0, 0]  # one factor per image, shared by channels
    unclipped = (out > 0) & (out < 1)
    np.testing.assert_allclose(out[unclipped],
                               ((x - mean) * scale[:, None, None, None] + mean)[unclipped],
                               atol=1e-5)
    assert np.all((scale >= 0.5 - 1e-5) & (scale <= 1.5 + 1e-5))


def test_crop_with_padding_is_a_window_of_the_padded_image():
    images = _images(n=6)
    out = np.asarray(A.RandomCrop(8, 8, padding=2)(KEY, images))
    padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets = set()
    for i in range(6):
        hits = [(t, l) for t in range(5) for l in range(5)
                if np.array_equal(out[i], padded[i, t:t + 8, l:l + 8])]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 1
    assert A.RandomCrop(6, 5)(KEY, images).shape == (6, 6, 5, 3)


def test_normalization_matches_numpy_and_adapts_to_data():
    x = np.random.default_rng(1).uniform(size=(10, 4, 4, 3)).astype(np.float32)
    norm = A.Normalization.adapt(x)
    out = np.asarray(norm(jnp.asarray(x)))
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)
    seq = A.Sequential([A.RandomFlip(), norm])
    np.testing.assert_allclose(seq(KEY, jnp.asarray(x)),
                               norm(A.RandomFlip()(jax.random.split(KEY, 2)[0], jnp.asarray(x))),
                               atol=1e-6)


def test_augmentation_runs_inside_a_jitted_step():
    aug = A.Sequential([A.RandomFlip(), A.RandomTranslation(0.1, 0.1)])

    @jax.jit
    def step(key, step_number, images):
        return aug(jax.random.fold_in(key, step_number), images).mean()

    images = _images()
    assert float(step(KEY, 0, images)) == float(step(KEY, 0, images))
    assert float(step(KEY, 0, images)) != float(step(KEY, 1, images))


@pytest.mark.parametrize("build,match", [
    (lambda: A.RandomRotation(-0.1), r"RandomRotation factor must be .* got -0.1"),
    (lambda: A.RandomRotation(0.1, fill_mode="wrapp"), "fill_mode must be one of"),
    (lambda: A.RandomZoom((-1.5, 0.2)), r"RandomZoom height_factor .* -1.0 < lower"),
    (lambda: A.RandomFlip("diagonal"), "RandomFlip mode must be one of"),
    (lambda: A.RandomContrast(1.5), r"RandomContrast factor must be a float in \[0, 1\]"),
    (lambda: A.RandomCrop(0, 8), "RandomCrop needs height, width > 0"),
    (lambda: A.Normalization((0.5, 0.5), (1.0,)), "one mean and one positive variance"),
    (lambda: A.Sequential([np.flip]), "Sequential takes augmentations"),
])
def test_bad_arguments_are_refused_at_construction(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"float \(N, H, W, C\) batch, got shape \(8, 8, 3\)"):
        A.RandomFlip()(KEY, _images()[0])
    with pytest.raises(ValueError, match="dtype uint8"):
        A.RandomFlip()(KEY, jnp.zeros((1, 4, 4, 1), jnp.uint8))
    with pytest.raises(ValueError, match="does not fit images of 8x8 padded by 0"):
        A.RandomCrop(10, 10)(KEY, _images())
    with pytest.raises(ValueError, match="statistics for 3 channels but the images have 1"):
        A.Normalization((0.5,) * 3, (1.0,) * 3)(jnp.zeros((1, 4, 4, 1)))
