"""jaxcnn.layers: each module against plain NumPy/ops on its own parameters."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import layers, ops
from tests.reference import conv2d_ref


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


@pytest.mark.parametrize("kernel,stride,padding,groups", [
    (3, 1, "SAME", 1), (5, 2, "VALID", 1), ((3, 1), (2, 1), 1, 2), (3, 1, ((1, 0), (0, 2)), 4)])
def test_conv2d_layer_matches_reference(kernel, stride, padding, groups):
    x = _x((2, 9, 8, 4))
    layer = layers.Conv2D(6 if groups != 4 else 8, kernel, strides=stride, padding=padding,
                          groups=groups)
    variables = layer.init(jax.random.key(0), x)
    k, b = variables["params"]["kernel"], variables["params"]["bias"]
    assert k.shape[2] == 4 // groups
    expected = conv2d_ref(np.asarray(x, np.float64), np.asarray(k, np.float64), np.asarray(b),
                          stride=stride, padding=padding, groups=groups)
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


def test_conv2d_layer_bfloat16_compute_keeps_float32_params():
    x = _x((1, 8, 8, 3))
    layer = layers.Conv2D(4, 3, dtype=jnp.bfloat16)
    variables = layer.init(jax.random.key(0), x)
    assert variables["params"]["kernel"].dtype == jnp.float32
    assert layer.apply(variables, x).dtype == jnp.bfloat16


def test_dense_layer_matches_numpy():
    x = _x((3, 7))
    layer = layers.Dense(5)
    variables = layer.init(jax.random.key(1), x)
    p = variables["params"]
    expected = np.asarray(x) @ np.asarray(p["kernel"]) + np.asarray(p["bias"])
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer,op", [
    (layers.MaxPool2D(2), lambda x: ops.max_pool(x, 2)),
    (layers.AvgPool2D(3, 1, "SAME"), lambda x: ops.avg_pool(x, 3, 1, "SAME")),
    (layers.MinPool2D(2, 1), lambda x: ops.min_pool(x, 2, 1)),
    (layers.SumPool2D((2, 3)), lambda x: ops.sum_pool(x, (2, 3))),
    (layers.GlobalAvgPool2D(), lambda x: x.mean(axis=(1, 2))),
    (layers.GlobalMaxPool2D(keepdims=True), lambda x: x.max(axis=(1, 2), keepdims=True)),
    (layers.Flatten(), lambda x: x.reshape(x.shape[0], -1)),
    (layers.Activation("tanh"), jnp.tanh),
])
def test_parameter_free_layers_equal_their_op(layer, op):
    x = _x((2, 6, 6, 3))
    variables = layer.init(jax.random.key(0), x)
    assert not variables.get("params")
    np.testing.assert_allclose(layer.apply(variables, x), op(x), rtol=1e-6, atol=1e-6)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'swishy'.*relu"):
        layers.Activation("swishy").init(jax.random.key(0), _x((1, 2)))


def test_dropout_drops_with_rate_and_is_identity_when_deterministic():
    x = jnp.ones((4, 1000))
    layer = layers.Dropout(0.3)
    assert np.array_equal(layer.apply({}, x, deterministic=True), x)
    out = np.asarray(layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)}))
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.3) < 0.02
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)
    again = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)})
    assert np.array_equal(out, again)


def test_batchnorm_normalizes_in_training_and_uses_running_stats_in_eval():
    x = _x((64, 4, 4, 3)) * 3.0 + 2.0
    bn = layers.BatchNorm()
    variables = bn.init(jax.random.key(0), x, use_running_average=False)
    y, updates = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    np.testing.assert_allclose(np.asarray(y).mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(y).std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    mean = np.asarray(x).mean(axis=(0, 1, 2))
    # momentum 0.9 (PyTorch's 0.1): running mean moves 10% of the way from 0 to the batch mean.
    np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.1 * mean, rtol=1e-4)
    fresh = bn.apply(variables, x, use_running_average=True)
    np.testing.assert_allclose(fresh, np.asarray(x) / np.sqrt(1 + 1e-5), rtol=1e-5)


def test_layers_keep_no_state_between_calls():
    x = _x((2, 8, 8, 1))
    conv = layers.Conv2D(3, 3)
    variables = conv.init(jax.random.key(0), x)
    first = conv.apply(variables, x)
    conv.apply(variables, x * 2)
    assert np.array_equal(first, conv.apply(variables, x))
