"""Tests for dense, flatten, dropout and the activations.

Values are compared with the naive NumPy references, gradients with float64
finite differences, and dropout's statistics with large samples.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxcnn.ops import dense, dropout, flatten, gelu, leaky_relu, relu, sigmoid, softmax, tanh
from tests.reference import (
    dense_ref,
    gelu_ref,
    leaky_relu_ref,
    relu_ref,
    sigmoid_ref,
    softmax_ref,
    tanh_ref,
)

RTOL = ATOL = 1e-5


def _rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _away_from_zero(shape, seed=0, dtype=np.float32):
    """Random values with |x| >= 0.1, so kinks at 0 do not break finite differences."""
    x = _rand(shape, seed, np.float64)
    return (np.sign(x) * (np.abs(x) + 0.1)).astype(dtype)


# ---- dense / flatten -------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(3, 4), (4,), (2, 3, 4)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_dense_matches_reference(x_shape, with_bias):
    x, k, b = _rand(x_shape, 0), _rand((4, 5), 1), _rand((5,), 2)
    bias = b if with_bias else None
    y = dense(x, k, bias)
    assert y.shape == x_shape[:-1] + (5,)
    np.testing.assert_allclose(np.asarray(y), dense_ref(x, k, bias), rtol=RTOL, atol=ATOL)


@settings(max_examples=25, deadline=None, database=None)
@given(n=st.integers(1, 4), fan_in=st.integers(1, 9), fan_out=st.integers(1, 9), seed=st.integers(0, 999))
def test_dense_hypothesis(n, fan_in, fan_out, seed):
    x, k, b = _rand((n, fan_in), seed), _rand((fan_in, fan_out), seed + 1), _rand((fan_out,), seed + 2)
    np.testing.assert_allclose(np.asarray(dense(x, k, b)), dense_ref(x, k, b), rtol=RTOL, atol=ATOL)


def test_dense_gradients():
    with jax.enable_x64(True):
        args = tuple(jnp.asarray(_rand(s, i, np.float64)) for i, s in enumerate([(3, 4), (4, 2), (2,)]))
        check_grads(dense, args, order=1, modes=["rev"])


@pytest.mark.parametrize(
    "x_shape,k_shape,b_shape,match",
    [
        ((), (1, 2), None, r"x must have at least 1 dimension"),
        ((3, 4), (4,), None, r"kernel must be 2-D \(in, out\), got shape \(4,\)"),
        ((3, 4), (5, 2), None, r"x has 4 features.*expects 5"),
        ((3, 4), (4, 2), (3,), r"bias must have shape \(2,\).*got shape \(3,\)"),
    ],
)
def test_dense_rejects_bad_input(x_shape, k_shape, b_shape, match):
    bias = None if b_shape is None else np.zeros(b_shape, np.float32)
    with pytest.raises(ValueError, match=match):
        dense(np.zeros(x_shape, np.float32), np.zeros(k_shape, np.float32), bias)


@pytest.mark.parametrize(
    "shape,out", [((2, 3, 4, 5), (2, 60)), ((3, 7), (3, 7)), ((4,), (4, 1)), ((1, 2, 2, 1), (1, 4))]
)
def test_flatten_keeps_batch_axis(shape, out):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    y = flatten(x)
    assert y.shape == out
    np.testing.assert_array_equal(np.asarray(y), x.reshape(out))


def test_flatten_rejects_scalar():
    with pytest.raises(ValueError, match="flatten: x must have a leading batch axis"):
        flatten(np.float32(1.0))


# ---- dropout ---------------------------------------------------------------


def test_dropout_identity_cases():
    x = jnp.asarray(_rand((4, 5)))
    assert dropout(x, 0.0, jax.random.key(0)) is x
    assert dropout(x, 0.0, None) is x
    assert dropout(x, 0.5, None, deterministic=True) is x


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_statistics(rate):
    x = jnp.ones((200_000,), jnp.float32)
    y = np.asarray(dropout(x, rate, jax.random.key(1)))
    dropped = np.mean(y == 0)
    assert abs(dropped - rate) < 0.01
    np.testing.assert_allclose(y[y != 0], 1.0 / (1.0 - rate), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02


def test_dropout_same_key_same_mask_and_shape_dtype():
    x = jnp.asarray(_rand((3, 4, 5)))
    a, b = dropout(x, 0.3, jax.random.key(7)), dropout(x, 0.3, jax.random.key(7))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert a.shape == x.shape and a.dtype == x.dtype
    c = dropout(x, 0.3, jax.random.key(8))
    assert not np.array_equal(np.asarray(a) == 0, np.asarray(c) == 0)


def test_dropout_under_jit_with_static_rate():
    f = jax.jit(lambda x, key: dropout(x, 0.5, key))
    y = np.asarray(f(jnp.ones((1000,)), jax.random.key(0)))
    assert set(np.unique(y)) <= {0.0, 2.0}


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan")])
def test_dropout_rejects_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=r"rate .* must be in \[0, 1\), got"):
        dropout(jnp.ones(3), rate, jax.random.key(0))


def test_dropout_rejects_non_number_rate():
    with pytest.raises(TypeError, match="rate must be a concrete real number"):
        dropout(jnp.ones(3), "0.5", jax.random.key(0))
    with pytest.raises(TypeError, match="rate must be a concrete real number"):
        jax.jit(lambda r: dropout(jnp.ones(3), r, jax.random.key(0)))(0.5)


def test_dropout_requires_key():
    with pytest.raises(ValueError, match="dropout: key is None.*jax.random.key"):
        dropout(jnp.ones(3), 0.5, None)


# ---- activations -----------------------------------------------------------

ACTIVATIONS = [
    (relu, relu_ref),
    (sigmoid, sigmoid_ref),
    (tanh, tanh_ref),
    (softmax, softmax_ref),
    (lambda x: softmax(x, axis=0), lambda x: softmax_ref(x, axis=0)),
    (leaky_relu, leaky_relu_ref),
    (lambda x: leaky_relu(x, negative_slope=0.2), lambda x: leaky_relu_ref(x, 0.2)),
    (gelu, gelu_ref),
    (lambda x: gelu(x, approximate=True), lambda x: gelu_ref(x, approximate=True)),
]


@pytest.mark.parametrize("fn,ref", ACTIVATIONS)
def test_activation_matches_reference(fn, ref):
    x = _rand((4, 6), 3) * 3
    y = fn(x)
    assert y.shape == x.shape and y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), ref(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("fn,ref", ACTIVATIONS)
def test_activation_gradients(fn, ref):
    with jax.enable_x64(True):
        check_grads(fn, (jnp.asarray(_away_from_zero((3, 4), 4, np.float64)),), order=1, modes=["rev"])


def test_gelu_default_is_exact_erf_form():
    x = np.array([-2.0, -0.5, 0.5, 2.0], np.float32)
    np.testing.assert_allclose(np.asarray(gelu(x)), gelu_ref(x, approximate=False), rtol=1e-6, atol=1e-7)
    assert not np.allclose(np.asarray(gelu(x)), gelu_ref(x, approximate=True), rtol=0, atol=1e-6)


def test_softmax_sums_to_one():
    y = softmax(_rand((3, 7)) * 10)
    np.testing.assert_allclose(np.asarray(y).sum(-1), 1.0, rtol=1e-6)
