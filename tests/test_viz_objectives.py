"""jaxcnn.viz.objectives and jaxcnn.viz.param: each objective goes up, penalties go down,
references for the image statistics, composition, and the bad-input errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jaxcnn.models import LeNet5
from jaxcnn.viz import objectives as O
from jaxcnn.viz import param as P
from jaxcnn.viz import render, visualize_class, visualize_filters

MODEL = LeNet5()
VARIABLES = MODEL.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
NOISE = P.pixels((32, 32, 1), batch=2, std=1.0)  # a noisy start keeps every filter alive


def _active_channel(layer):
    """The channel of `layer` most active on NOISE's first image (alive from the start)."""
    image = NOISE.to_image(NOISE.init(jax.random.key(3)))
    _, acts = MODEL.apply(VARIABLES, image, capture_activations=True)
    return int(jnp.argmax(acts[layer][0].reshape(-1, acts[layer].shape[-1]).mean(axis=0)))


OBJECTIVES = {
    "channel": lambda: O.channel("conv2", _active_channel("conv2")),
    "channel_dense": lambda: O.channel("fc1", _active_channel("fc1")),
    "neuron": lambda: O.neuron("conv1", _active_channel("conv1")),
    "layer_norm": lambda: O.layer_norm("conv2"),
    "class_logit": lambda: O.class_logit(3),
    "class_probability": lambda: O.class_probability(3),
    "diversity": lambda: O.diversity("conv1"),
    "combined": lambda: O.layer_norm("conv1") + 2.0 * O.class_logit(1) - 0.1 * O.l2(0.5),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_objective_goes_up_after_a_few_steps(name):
    out = render(MODEL, VARIABLES, OBJECTIVES[name](), NOISE, key=jax.random.key(3), steps=12)
    first, last = np.asarray(out.values[0]).mean(), np.asarray(out.values[-1]).mean()
    assert last > first + 1e-3 * max(1.0, abs(first)), (first, last)


PENALTIES = {
    "total_variation": (O.total_variation(), lambda x: O.image_total_variation(x)),
    "l1": (O.l1(0.5), lambda x: np.abs(x - 0.5).mean(axis=(1, 2, 3))),
    "l2": (O.l2(0.5), lambda x: np.square(x - 0.5).mean(axis=(1, 2, 3))),
    "blur": (O.blur(3), lambda x: np.square(x - O.box_blur(x, 3)).mean(axis=(1, 2, 3))),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_subtracting_a_penalty_lowers_it_on_the_image(name):
    penalty, measure = PENALTIES[name]
    out = render(MODEL, VARIABLES, -1.0 * penalty, NOISE, key=jax.random.key(3), steps=30,
                 learning_rate=0.1, snapshot_steps=(0,))
    before, after = np.asarray(measure(out.snapshots[0])), np.asarray(measure(out.images))
    assert np.all(after < 0.6 * before), (before, after)


def test_image_statistics_match_naive_references():
    x = np.random.default_rng(0).uniform(size=(2, 7, 9, 3)).astype(np.float32)
    tv = [sum(abs(x[n, i + 1, j, c] - x[n, i, j, c]) for i in range(6) for j in range(9)
              for c in range(3)) / (6 * 9 * 3)
          + sum(abs(x[n, i, j + 1, c] - x[n, i, j, c]) for i in range(7) for j in range(8)
                for c in range(3)) / (7 * 8 * 3) for n in range(2)]
    np.testing.assert_allclose(O.image_total_variation(jnp.asarray(x)), tv, rtol=1e-5)
    blurred = scipy.ndimage.uniform_filter(x, size=(1, 3, 3, 1), mode="nearest")
    np.testing.assert_allclose(O.box_blur(jnp.asarray(x), 3), blurred, rtol=1e-5, atol=1e-6)


def test_objective_values_read_the_right_numbers():
    acts = {"a": jnp.arange(2 * 3 * 4 * 5, dtype=jnp.float32).reshape(2, 3, 4, 5)}
    logits = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    a = np.asarray(acts["a"])
    np.testing.assert_allclose(O.channel("a", 2)(acts, logits), a[..., 2].mean(axis=(1, 2)))
    np.testing.assert_allclose(O.neuron("a", 4, y=2, x=1)(acts, logits), a[:, 2, 1, 4])
    np.testing.assert_allclose(O.neuron("a", 4)(acts, logits), a[:, 1, 2, 4])
    np.testing.assert_allclose(O.layer_norm("a")(acts, logits), (a ** 2).mean(axis=(1, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(O.class_probability(2)(acts, logits),
                               [np.exp(3) / np.exp([1, 2, 3]).sum(), 1 / 3], rtol=1e-6)
    combined = O.class_logit(1) - 2.0 * O.class_logit(0) + 0.5 * O.channel("a", 0)
    np.testing.assert_allclose(combined(acts, logits),
                               logits[:, 1] - 2 * logits[:, 0] + 0.5 * a[..., 0].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose((-O.class_logit(2))(acts, logits), -logits[:, 2])


def test_diversity_matches_a_numpy_gram_cosine():
    acts = {"a": jax.random.normal(jax.random.key(0), (3, 4, 4, 2))}
    a = np.asarray(acts["a"]).reshape(3, 16, 2)
    grams = np.stack([g.T @ g for g in a]).reshape(3, -1)
    unit = grams / np.linalg.norm(grams, axis=1, keepdims=True)
    expected = [-np.mean([unit[i] @ unit[j] for j in range(3) if j != i]) for i in range(3)]
    np.testing.assert_allclose(O.diversity("a")(acts, None), expected, rtol=1e-5)


def test_objectives_combine_only_with_objectives_and_scalars():
    with pytest.raises(TypeError, match="both operands must be Objectives"):
        O.class_logit(0) + 1.0
    with pytest.raises(TypeError, match="only be multiplied by a scalar"):
        O.class_logit(0) * O.class_logit(1)


def test_unknown_layer_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown layer 'conv9'.*conv1, pool1, conv2"):
        render(MODEL, VARIABLES, O.channel("conv9", 0), key=jax.random.key(0), steps=1)
    with pytest.raises(ValueError, match=r"unknown layer 'conv9'.*conv1, pool1, conv2"):
        visualize_filters(MODEL, VARIABLES, "conv9", key=jax.random.key(0), steps=1)


def test_channel_index_out_of_range_names_the_layer_size():
    with pytest.raises(ValueError, match=r"channel index for layer 'conv1' 6 is out of range.*< 6"):
        render(MODEL, VARIABLES, O.channel("conv1", 6), key=jax.random.key(0), steps=1)
    with pytest.raises(ValueError, match=r"channel index for layer 'conv2' 16 is out of range"):
        visualize_filters(MODEL, VARIABLES, "conv2", [0, 16], key=jax.random.key(0), steps=1)


def test_class_index_out_of_range():
    with pytest.raises(ValueError, match=r"class_index 10 is out of range.*< 10"):
        render(MODEL, VARIABLES, O.class_logit(10), key=jax.random.key(0), steps=1)
    with pytest.raises(ValueError, match=r"class_index -1 is out of range"):
        visualize_class(MODEL, VARIABLES, -1, key=jax.random.key(0), steps=1)


def test_parameterization_must_fit_the_models_input_channels():
    with pytest.raises(ValueError, match=r"makes images of shape \(32, 32, 3\).*expects "
                                         r"\(32, 32, 1\) \(different channels\).*image_shape"):
        render(MODEL, VARIABLES, O.class_logit(0), P.fourier((32, 32, 3)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="decorrelate=True needs 3"):
        P.fourier((32, 32, 1), decorrelate=True)
    with pytest.raises(ValueError, match="squash must be"):
        P.pixels((32, 32, 1), squash="tanh")


@pytest.mark.parametrize("make", [lambda s: P.pixels(s, 2), lambda s: P.pixels(s, 2, squash="clip", std=1.0),
                                  lambda s: P.fourier(s, 2)], ids=["sigmoid", "clip", "fourier"])
def test_parameterizations_make_images_in_unit_range(make):
    for shape in [(8, 10, 1), (9, 8, 3)]:
        param = make(shape)
        images = jax.jit(lambda k: param.to_image(param.init(k)))(jax.random.key(0))
        assert images.shape == (2, *shape) and param.shape == (2, *shape)
        assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
        assert float(images.std()) > 0.0


def test_fourier_image_matches_numpy_inverse_fft():
    param = P.fourier((6, 8, 1), decay_power=1.0, std=1.0)
    params = param.init(jax.random.key(1))
    spectrum = np.asarray(params[0] + 1j * params[1])[0, 0]
    freqs = np.sqrt(np.fft.rfftfreq(8)[None, :] ** 2 + np.fft.fftfreq(6)[:, None] ** 2)
    scale = np.sqrt(48) / np.maximum(freqs, 1 / 8)
    expected = 1 / (1 + np.exp(-np.fft.irfft2(spectrum * scale, s=(6, 8)) / 4))
    np.testing.assert_allclose(param.to_image(params)[0, ..., 0], expected, rtol=1e-4, atol=1e-5)
    zero = jax.tree.map(jnp.zeros_like, params)
    np.testing.assert_allclose(param.to_image(zero), 0.5)
