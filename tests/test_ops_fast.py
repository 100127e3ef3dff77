"""Tests for the XLA:CPU fast paths (`jaxcnn.ops.cpu_fast`) against the plain `lax` ops.

Every fast formulation must give the plain version's outputs and gradients (relative
error <= 1e-5 in float32) over a grid of shapes, on tie-free and on tied inputs, and
must be chosen only when compiling for the CPU.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export, lax

from jaxcnn import ops
from jaxcnn.ops import cpu_fast

RTOL = 1e-5
# (N, H, W, C, window): even and odd sizes (a dropped remainder), square and not.
SHAPES = [(2, 4, 4, 3, (2, 2)), (1, 5, 7, 2, (2, 2)), (3, 6, 6, 1, (3, 3)),
          (2, 6, 5, 4, (2, 3)), (1, 8, 8, 6, (4, 4)), (2, 3, 3, 2, (1, 1)),
          (1, 7, 9, 3, (3, 2))]
PLAIN = {"max": (-np.inf, lax.max), "min": (np.inf, lax.min), "sum": (0.0, lax.add)}


def _plain(x, window, kind):
    init, op = PLAIN[kind]
    win = (1, *window, 1)
    return lax.reduce_window(x, np.float32(init), op, win, win, "VALID")


def _fast(x, window, kind):
    if kind == "sum":
        return cpu_fast.tiled_sum(x, window)
    return cpu_fast.tiled_extremum(x, window, kind)


def _inputs(shape, ties, seed):
    rng = np.random.default_rng(seed)
    if ties == "none":  # distinct values: a unique extremum per window
        return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1).astype(np.float32)
    if ties == "some":  # few distinct values: many windows with tied extrema
        return rng.integers(0, 3, shape).astype(np.float32)
    return np.full(shape, 0.5, np.float32)  # every cell of every window tied


def _value_and_vjp(f, x, cotangent):
    y, vjp = jax.vjp(f, x)
    return y, vjp(cotangent)[0]


@pytest.mark.parametrize("kind", ["max", "min", "sum"])
@pytest.mark.parametrize("ties", ["none", "some", "all"])
@pytest.mark.parametrize("n,h,w,c,window", SHAPES)
def test_tiled_pool_matches_lax_values_and_gradients(kind, ties, n, h, w, c, window):
    x = _inputs((n, h, w, c), ties, seed=h * w + c)
    plain_y = _plain(x, window, kind)
    cotangent = np.random.default_rng(1).normal(size=plain_y.shape).astype(np.float32)
    want_y, want_dx = jax.jit(lambda x: _value_and_vjp(lambda x: _plain(x, window, kind), x,
                                                       cotangent))(x)
    got_y, got_dx = jax.jit(lambda x: _value_and_vjp(lambda x: _fast(x, window, kind), x,
                                                     cotangent))(x)
    np.testing.assert_allclose(got_y, want_y, rtol=RTOL)
    np.testing.assert_allclose(got_dx, want_dx, rtol=RTOL)
    if kind != "sum":  # one cell per window takes the whole cotangent, as in lax
        assert np.count_nonzero(got_dx) == np.count_nonzero(want_dx)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_ties_go_to_the_first_cell_in_row_major_order(kind):
    x = jnp.zeros((1, 2, 2, 1)).at[0, 1, :, 0].set(1.0 if kind == "max" else -1.0)
    dx = jax.grad(lambda x: cpu_fast.tiled_extremum(x, (2, 2), kind).sum())(x)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 0.0], [1.0, 0.0]])


def test_a_window_holding_nan_gives_nan_and_sends_its_gradient_to_the_first_nan():
    # XLA's walk ends after the last NaN; the reduction-based pick takes the first one.
    x = jnp.array([0.0, 0.0, jnp.nan, 1.0, jnp.nan, 2.0, 0.0, jnp.nan]).reshape(1, 2, 4, 1)
    got = jax.grad(lambda x: cpu_fast.tiled_extremum(x, (2, 2), "max").sum())(x)
    want = np.zeros(8, np.float32)
    want[[4, 2]] = 1.0  # window 1: [0, 0, nan, 2] -> cell 4; window 2: [nan, 1, 0, nan] -> cell 2
    np.testing.assert_array_equal(got.ravel(), want)
    assert jnp.isnan(cpu_fast.tiled_extremum(x, (2, 2), "max")).all()


@pytest.mark.parametrize("kind", ["max", "min"])
def test_every_window_of_special_values_gets_the_lax_gradient(kind):
    # All 4**4 windows of 2x2 cells drawn from -inf, 0, 1, +inf: the pick must follow
    # select_and_scatter's walk through infinities and ties alike.
    values = np.array([-np.inf, 0.0, 1.0, np.inf], np.float32)
    windows = values[np.stack(np.meshgrid(*[np.arange(4)] * 4, indexing="ij"), -1).reshape(-1, 4)]
    x = jnp.asarray(windows.reshape(-1, 2, 2).transpose(1, 0, 2).reshape(1, 2, -1, 1))
    want = jax.grad(lambda x: _plain(x, (2, 2), kind).sum())(x)
    got = jax.jit(jax.grad(lambda x: cpu_fast.tiled_extremum(x, (2, 2), kind).sum()))(x)
    np.testing.assert_array_equal(got, want)


def test_forward_mode_and_vmap_match_lax():
    x = _inputs((3, 2, 4, 4, 2), "some", seed=0)
    t = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    plain = jax.vmap(lambda x: _plain(x, (2, 2), "max"))
    fast = jax.vmap(lambda x: cpu_fast.tiled_extremum(x, (2, 2), "max"))
    for got, want in zip(jax.jvp(fast, (x,), (t,)), jax.jvp(plain, (x,), (t,))):
        np.testing.assert_allclose(got, want, rtol=RTOL)


def test_second_order_gradient_through_relu_and_pool_matches_lax():
    x = _inputs((1, 4, 4, 2), "none", seed=3) - 1.0
    w = jnp.linspace(-1.0, 1.0, 8).reshape(1, 2, 2, 2)

    def hvp(pool):
        loss = lambda x: jnp.sum(jnp.tanh(pool(x)) * w)
        return jax.jvp(jax.grad(loss), (x,), (jnp.ones_like(x),))[1]

    np.testing.assert_allclose(hvp(lambda x: cpu_fast.tiled_extremum(x, (2, 2), "max")),
                               hvp(lambda x: _plain(x, (2, 2), "max")), rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("pool", [ops.max_pool, ops.min_pool, ops.sum_pool, ops.avg_pool])
def test_public_pools_equal_the_plain_version_under_jit_and_grad(pool):
    x = _inputs((2, 6, 6, 3), "some", seed=4)
    kind = {"max_pool": "max", "min_pool": "min"}.get(pool.__name__, "sum")
    scale = 0.25 if pool is ops.avg_pool else 1.0
    want = jax.grad(lambda x: jnp.sum(jnp.sin(_plain(x, (2, 2), kind) * scale)))(x)
    got = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(pool(x, 2)))))(x)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-7)


def _lowered(f, platform, x):
    return export.export(jax.jit(f), platforms=[platform])(x).mlir_module()


@pytest.mark.parametrize("platform", ["cuda", "rocm", "tpu"])
def test_other_platforms_keep_xla_pooling(platform):
    x = jax.ShapeDtypeStruct((2, 8, 8, 4), jnp.float32)
    grad = jax.grad(lambda x: ops.max_pool(x, 2).sum())
    assert "reduce_window" in _lowered(lambda x: ops.max_pool(x, 2), platform, x)
    assert "select_and_scatter" in _lowered(grad, platform, x)


def test_cpu_uses_the_tiled_pooling():
    x = jax.ShapeDtypeStruct((2, 8, 8, 4), jnp.float32)
    grad = jax.grad(lambda x: ops.max_pool(x, 2).sum())
    assert "reduce_window" not in _lowered(lambda x: ops.max_pool(x, 2), "cpu", x)
    assert "select_and_scatter" not in _lowered(grad, "cpu", x)


def test_overlapping_or_padded_windows_keep_xla_pooling_on_cpu():
    x = jax.ShapeDtypeStruct((2, 8, 8, 4), jnp.float32)
    assert "reduce_window" in _lowered(lambda x: ops.max_pool(x, 3, 2), "cpu", x)
    assert "reduce_window" in _lowered(lambda x: ops.max_pool(x, 3, padding="SAME"), "cpu", x)


@pytest.mark.parametrize("window,stride,pads,expected", [
    ((2, 2), (2, 2), ((0, 0), (0, 0)), True),
    ((2, 3), (2, 3), ((0, 0), (0, 0)), True),
    ((3, 3), (2, 2), ((0, 0), (0, 0)), False),
    ((2, 2), (2, 2), ((0, 1), (0, 0)), False),
])
def test_tiles_input(window, stride, pads, expected):
    assert cpu_fast.tiles_input(window, stride, pads) is expected


def test_integer_max_pool_uses_the_tiled_path_exactly():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.int32).reshape(2, 4, 4, 3) % 7
    np.testing.assert_array_equal(ops.max_pool(x, 2), _plain_int_max(x))


def _plain_int_max(x):
    win = (1, 2, 2, 1)
    return lax.reduce_window(x, np.int32(np.iinfo(np.int32).min), lax.max, win, win, "VALID")
