"""jaxcnn.models: registry, LeNet-5 parameter counts, named activations, input checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models


def _param_count(model):
    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32))
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))


def test_lenet5_has_the_seed_parameter_count():
    assert _param_count(models.create("lenet5", num_classes=10)) == 63_802


def test_classic_lenet5_uses_84_units():
    # conv 156 + 2,416; dense 400*120+120, 120*84+84, 84*10+10
    assert _param_count(models.create("lenet5_classic")) == 156 + 2416 + 48120 + 10164 + 850


def test_registry_lists_models_and_rejects_unknown_names():
    assert "lenet5" in models.names()
    with pytest.raises(ValueError, match="unknown model 'lenet6'.*lenet5"):
        models.create("lenet6")


def test_lenet5_returns_named_activations_in_order():
    model = models.create("lenet5")
    x = jnp.zeros((2, 32, 32, 1))
    variables = model.init(jax.random.key(0), x)
    logits, acts = model.apply(variables, x, capture_activations=True)
    shapes = {name: a.shape for name, a in acts.items()}
    assert shapes == {"conv1": (2, 28, 28, 6), "pool1": (2, 14, 14, 6), "conv2": (2, 10, 10, 16),
                      "pool2": (2, 5, 5, 16), "flatten": (2, 400), "fc1": (2, 120),
                      "fc2": (2, 100), "logits": (2, 10)}
    assert models.layer_names(model) == list(shapes)
    np.testing.assert_array_equal(logits, model.apply(variables, x))


def test_model_refuses_images_of_the_wrong_shape():
    model = models.create("lenet5")
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 32, 32, 1\).*\(4, 28, 28, 1\)"):
        model.apply(variables, jnp.zeros((4, 28, 28, 1)))
    with pytest.raises(ValueError, match="got an input of shape"):
        jax.jit(model.apply)(variables, jnp.zeros((4, 32, 32, 3)))


def test_lenet5_bfloat16_compute():
    model = models.create("lenet5", dtype=jnp.bfloat16)
    x = jnp.ones((2, 32, 32, 1))
    variables = model.init(jax.random.key(0), x)
    assert jax.tree.leaves(variables)[0].dtype == jnp.float32
    assert model.apply(variables, x).dtype == jnp.bfloat16
