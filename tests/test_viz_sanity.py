"""The model-randomization sanity check: Spearman correlation against scipy, the cascade's
order and bookkeeping, and the paper's finding that guided backprop stays close to the
trained model's maps while the plain gradient does not."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxcnn import viz
from jaxcnn.models import LeNet5
from jaxcnn.viz.sanity import model_randomization, spearman
from viz_lines import lines, trained_lenet


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (3, 40)).astype(np.float32)  # many ties
    b = rng.normal(size=(3, 40)).astype(np.float32)
    expected = [scipy.stats.spearmanr(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(spearman(jnp.asarray(a), jnp.asarray(b)), expected, atol=1e-5)
    np.testing.assert_allclose(spearman(jnp.asarray(b), jnp.asarray(b)), 1.0, atol=1e-6)


def test_the_cascade_goes_from_the_logits_down_and_replaces_one_layer_more_each_step():
    model = LeNet5()
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1))
    seen = []

    def explain(v, x):  # records which layers still hold the trained weights
        seen.append([name for name in v["params"]
                     if v["params"][name] is variables["params"][name]])
        return viz.saliency(model, v, x, 0)

    result = model_randomization(model, variables, images, explain, key=jax.random.key(2))
    assert list(result) == ["logits", "fc2", "fc1", "conv2", "conv1"]
    assert seen[0] == ["conv1", "conv2", "fc1", "fc2", "logits"]
    assert seen[1:] == [["conv1", "conv2", "fc1", "fc2"], ["conv1", "conv2", "fc1"],
                        ["conv1", "conv2"], ["conv1"], []]
    assert all(r.shape == (2,) for r in result.values())
    unchanged = model_randomization(model, variables, images, lambda v, x: x,
                                    key=jax.random.key(2))
    np.testing.assert_allclose(np.stack(list(unchanged.values())), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="variables hold no 'params' to randomize"):
        model_randomization(model, {}, images, explain, key=jax.random.key(2))


@pytest.mark.slow
def test_guided_backprop_stays_close_to_the_trained_maps_while_the_gradient_does_not():
    model, variables = trained_lenet()
    images, _, _ = lines(8, seed=3)
    key = jax.random.key(1)
    gradient = model_randomization(model, variables, images,
                                   lambda v, x: viz.saliency(model, v, x), key=key)
    guided = model_randomization(model, variables, images,
                                 lambda v, x: viz.guided_backprop(model, v, x), key=key)
    # Measured on a 2-core Xeon: saliency 0.65 -> 0.40 (logits -> conv1 randomized),
    # guided backprop 0.91 -> 0.53, higher at every step (as Adebayo et al. found).
    for layer in gradient:
        assert float(guided[layer].mean()) > float(gradient[layer].mean()) + 0.05, layer
    assert float(gradient["conv1"].mean()) < 0.55
