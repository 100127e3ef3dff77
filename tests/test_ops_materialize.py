"""Tests for `jaxcnn.ops.materialize`: the value kept in memory on XLA:CPU."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import export

from jaxcnn import ops
from jaxcnn.ops import cpu_fast

FINITE_F32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
SHAPES = st.sampled_from([(64,), (2, 4, 8), (8, 8)])


@settings(max_examples=40, deadline=None)
@given(st.lists(FINITE_F32, min_size=64, max_size=64), SHAPES)
def test_finite_values_come_back_exactly_subnormals_as_zero(values, shape):
    x = np.array(values, np.float32).reshape(shape)
    normal = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.float32(0), x)
    np.testing.assert_array_equal(jax.jit(ops.materialize)(jnp.asarray(x)), normal)


@settings(max_examples=40, deadline=None)
@given(st.lists(FINITE_F32, min_size=64, max_size=64), SHAPES)
def test_relu_outputs_come_back_exactly_subnormals_included(values, shape):
    # Subnormals are flushed to zero by the product, as XLA:CPU's max already does.
    z = jnp.asarray(np.array(values, np.float32).reshape(shape))
    relu = jax.jit(jax.nn.relu)
    np.testing.assert_array_equal(jax.jit(lambda z: ops.materialize(jax.nn.relu(z)))(z), relu(z))


def test_subnormals_come_back_as_zero():
    x = jnp.resize(jnp.asarray([1e-40, -1e-42, 1.0], jnp.float32), (64,))
    np.testing.assert_array_equal(jax.jit(ops.materialize)(x), jnp.resize(jnp.asarray([0.0, 0.0, 1.0]), (64,)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_extreme_finite_values_in_every_float_dtype(dtype):
    info = jnp.finfo(dtype)
    specials = [info.max, -info.max, info.tiny, -info.tiny, info.eps, 0.0, 1.0, -3.5]
    x = jnp.resize(jnp.asarray(specials, dtype), (2, 4, 4, 64))
    np.testing.assert_array_equal(jax.jit(ops.materialize)(x), x)


def test_a_non_finite_value_turns_its_group_of_64_nan_and_no_more():
    x = jnp.arange(2 * 128, dtype=jnp.float32).reshape(2, 128)
    x = x.at[0, 70].set(jnp.inf).at[1, 3].set(jnp.nan)
    got = np.asarray(jax.jit(ops.materialize)(x))
    expected = np.asarray(x).copy()
    expected[0, 64:128] = np.nan
    expected[0, 70] = np.inf  # the infinity itself is kept (inf * 1 + 0 + ...)
    expected[1, 0:64] = np.nan
    np.testing.assert_array_equal(got, expected)


def test_gradient_forward_mode_and_vmap_pass_through():
    x = jax.random.normal(jax.random.key(0), (3, 4, 4, 16))
    w = jax.random.normal(jax.random.key(1), x.shape)
    np.testing.assert_array_equal(jax.grad(lambda x: jnp.sum(ops.materialize(x) * w))(x), w)
    primal, tangent = jax.jvp(ops.materialize, (x,), (w,))
    np.testing.assert_array_equal(primal, x)
    np.testing.assert_array_equal(tangent, w)
    np.testing.assert_array_equal(jax.vmap(jax.jit(ops.materialize))(x), x)


@pytest.mark.parametrize("x", [jnp.arange(64), jnp.ones((3, 5)), jnp.ones((2, 2), bool)])
def test_integer_or_small_inputs_come_back_unchanged(x):
    assert "dot" not in str(jax.make_jaxpr(ops.materialize)(x))
    np.testing.assert_array_equal(ops.materialize(x), x)


def _lowered(platform):
    x = jax.ShapeDtypeStruct((2, 4, 4, 64), jnp.float32)
    return export.export(jax.jit(ops.materialize), platforms=[platform])(x).mlir_module()


def test_cpu_lowers_to_an_identity_product_other_platforms_to_nothing():
    assert "dot_general" in _lowered("cpu")
    for platform in ("cuda", "rocm", "tpu"):
        assert "dot_general" not in _lowered(platform)


def _fusions_reading(hlo: str, parameter: str) -> int:
    """How many fusions (or other ops) of the entry computation read `parameter`."""
    entry = hlo[hlo.index("\nENTRY"):]
    name = re.search(rf"%({parameter}[\w.]*) = \S+ parameter", entry).group(1)
    return sum(1 for line in entry.splitlines()
               if " parameter(" not in line and re.search(rf"[(,\s]%{re.escape(name)}[,)]", line))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU fusion")
def test_readers_read_the_stored_value_instead_of_recomputing_it():
    def chain_read_twice(a, b, keep):
        y = jax.nn.relu(a * 1.5 + b)
        y = keep(y)
        return jnp.transpose(y, (3, 1, 2, 0)) * 2.0, y + 1.0

    a = b = jnp.ones((8, 8, 8, 64))
    plain = jax.jit(lambda a, b: chain_read_twice(a, b, lambda y: y)).lower(a, b).compile()
    kept = jax.jit(lambda a, b: chain_read_twice(a, b, ops.materialize)).lower(a, b).compile()
    assert _fusions_reading(plain.as_text(), "a") == 2  # the chain is computed in each reader
    assert _fusions_reading(kept.as_text(), "a") == 1  # computed once, stored by the product
    np.testing.assert_array_equal(kept(a, b)[0], plain(a, b)[0])


def test_store_width_divides_resnet_channel_counts():
    assert all(c % cpu_fast.STORE_WIDTH == 0 for c in (64, 128, 256, 512, 1024, 2048))
