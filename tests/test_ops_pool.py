"""Tests for the pooling ops against the naive NumPy reference.

Covers windows 1-3, strides 1-3 (and the stride=window default), every
padding form, both ``count_include_pad`` meanings of ``avg_pool``, shape
agreement with ``pool_output_size``, global pools, gradients and validation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxcnn.ops import (
    avg_pool,
    global_avg_pool,
    global_max_pool,
    max_pool,
    min_pool,
    pool_output_size,
    sum_pool,
)
from tests.reference import pool_ref, ref_pads

RTOL = ATOL = 1e-5
POOLS = {"max": max_pool, "min": min_pool, "sum": sum_pool, "avg": avg_pool}


def _no_ties(shape, seed=0, dtype=np.float32):
    """Distinct values spaced >= 0.1 apart, so max/min have unique arg-extrema."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0
    return values.astype(dtype)


def _apply(kind, x, window, stride, padding, count_include_pad=False):
    if kind == "avg":
        return avg_pool(x, window, stride, padding, count_include_pad=count_include_pad)
    return POOLS[kind](x, window, stride, padding)


# (h, w, window, stride, padding)
CASES = [
    (4, 4, 2, None, "VALID"),
    (5, 5, 2, None, "VALID"),
    (5, 5, 2, None, "SAME"),
    (6, 7, 3, 2, "same"),
    (7, 6, 3, 1, "SAME"),
    (6, 6, 3, 3, "valid"),
    (5, 7, (2, 3), (1, 2), "SAME"),
    (5, 5, 3, 2, 1),
    (6, 5, 3, 1, (1, 0)),
    (5, 6, (3, 2), 2, ((0, 2), (1, 0))),
    (4, 5, 1, 1, "VALID"),
    (3, 3, 3, 1, "SAME"),
    (1, 1, 1, 3, "SAME"),
    (2, 3, 3, 3, "SAME"),
]


@pytest.mark.parametrize("kind", ["max", "min", "sum", "avg"])
@pytest.mark.parametrize("h,w,window,stride,padding", CASES)
def test_pool_matches_reference(kind, h, w, window, stride, padding):
    x = _no_ties((2, h, w, 3))
    y = _apply(kind, x, window, stride, padding)
    expected = pool_ref(x, window, stride, padding, kind=kind)
    assert tuple(y.shape[1:3]) == pool_output_size((h, w), window, stride, padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(np.asarray(y), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("h,w,window,stride,padding", [c for c in CASES if c[4] != "VALID"])
def test_avg_pool_count_include_pad(h, w, window, stride, padding):
    x = _no_ties((1, h, w, 2), seed=1)
    y = avg_pool(x, window, stride, padding, count_include_pad=True)
    expected = pool_ref(x, window, stride, padding, kind="avg", count_include_pad=True)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=RTOL, atol=ATOL)


def test_avg_pool_same_border_values():
    # Ones averaged with SAME: excluding padding keeps every value at 1, while
    # the PyTorch meaning shrinks the corner (4 real cells of 9) to 4/9.
    x = np.ones((1, 3, 3, 1), np.float32)
    np.testing.assert_allclose(np.asarray(avg_pool(x, 3, 1, "SAME")), 1.0)
    y = avg_pool(x, 3, 1, "SAME", count_include_pad=True)
    np.testing.assert_allclose(np.asarray(y)[0, 0, 0, 0], 4 / 9, rtol=1e-6)


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 3, 3, 1), np.float32)
    np.testing.assert_array_equal(np.asarray(max_pool(x, 2, 1, 1)), -1.0)
    np.testing.assert_array_equal(np.asarray(min_pool(-x, 2, 1, 1)), 1.0)


def test_integer_inputs():
    x = np.arange(16, dtype=np.int32).reshape(1, 4, 4, 1)
    assert max_pool(x, 2, padding="SAME").dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(max_pool(x, 2))[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_allclose(np.asarray(avg_pool(x, 2))[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


_padding = st.one_of(
    st.sampled_from(["SAME", "VALID"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2),
                                                                       st.integers(0, 2))),
)


_pair_1_3 = st.tuples(st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=25, deadline=None, database=None)
@given(data=st.data())
def test_pool_hypothesis(data):
    h, w = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    window = data.draw(st.one_of(st.integers(1, 3), _pair_1_3))
    stride = data.draw(st.one_of(st.none(), st.integers(1, 3), _pair_1_3))
    padding = data.draw(_padding)
    kind = data.draw(st.sampled_from(["max", "min", "sum", "avg"]))
    include = data.draw(st.booleans())
    x = _no_ties((2, h, w, 2), seed=data.draw(st.integers(0, 2**16)))

    win = (window, window) if isinstance(window, int) else window
    strd = win if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    pads = ref_pads(padding, (h, w), win, strd)
    too_big = any(k > n + p[0] + p[1] for n, k, p in zip((h, w), win, pads))
    pad_too_big = any(max(p) >= k for p, k in zip(pads, win))
    if too_big or pad_too_big:
        match = "larger than the padded input" if too_big else "too large for window"
        with pytest.raises(ValueError, match=match):
            _apply(kind, x, window, stride, padding, include)
        with pytest.raises(ValueError, match=match):
            pool_output_size((h, w), window, stride, padding)
        return
    y = _apply(kind, x, window, stride, padding, include)
    assert tuple(y.shape[1:3]) == pool_output_size((h, w), window, stride, padding)
    expected = pool_ref(x, window, stride, padding, kind=kind, count_include_pad=include)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools(keepdims):
    x = _no_ties((2, 4, 3, 5))
    shape = (2, 1, 1, 5) if keepdims else (2, 5)
    y_avg = global_avg_pool(x, keepdims=keepdims)
    y_max = global_max_pool(x, keepdims=keepdims)
    assert y_avg.shape == shape and y_max.shape == shape
    for y, kind in ((y_avg, "avg"), (y_max, "max")):
        expected = pool_ref(x, (4, 3), kind=kind)[:, 0, 0]
        np.testing.assert_allclose(np.asarray(y).reshape(2, 5), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["max", "min", "sum", "avg", "avg_incl"])
@pytest.mark.parametrize(
    "window,stride,padding", [(2, None, "VALID"), (3, 2, "SAME"), (2, 1, ((1, 0), (0, 1)))]
)
def test_pool_gradients(kind, window, stride, padding):
    with jax.enable_x64(True):
        x = jnp.asarray(_no_ties((2, 5, 4, 2), seed=2, dtype=np.float64))
        base = "avg" if kind == "avg_incl" else kind
        f = lambda x: _apply(base, x, window, stride, padding, kind == "avg_incl")
        check_grads(f, (x,), order=1, modes=["rev"])


@pytest.mark.parametrize("fn", [global_avg_pool, global_max_pool])
def test_global_pool_gradients(fn):
    with jax.enable_x64(True):
        check_grads(fn, (jnp.asarray(_no_ties((2, 3, 3, 2), dtype=np.float64)),), order=1, modes=["rev"])


@pytest.mark.parametrize("kind", ["max", "min", "sum", "avg"])
@pytest.mark.parametrize(
    "x_shape,kwargs,exc,match",
    [
        ((4, 4, 3), {"window": 2}, ValueError, r"x must be 4-D \(N, H, W, C\), got shape \(4, 4, 3\)"),
        ((1, 4, 4, 3), {"window": 5}, ValueError, r"window \(5, 5\) is larger than the padded input \(4, 4\)"),
        ((1, 4, 4, 3), {"window": 0}, ValueError, r"window must be positive, got 0"),
        ((1, 4, 4, 3), {"window": 2, "stride": 0}, ValueError, r"stride must be positive, got 0"),
        ((1, 4, 4, 3), {"window": 2, "padding": "full"}, ValueError, r"padding='full'.*'SAME', 'VALID'"),
        ((1, 4, 4, 3), {"window": 2, "padding": (-1, 0)}, ValueError, r"non-negative, got \(-1, 0\)"),
        ((1, 4, 4, 3), {"window": 2, "padding": 2}, ValueError,
         r"padding \(\(2, 2\), \(2, 2\)\) is too large for window \(2, 2\)"),
        ((1, 4, 4, 3), {"window": "2"}, TypeError, r"window must be a positive int or a pair.*got '2'"),
    ],
)
def test_pool_rejects_bad_input(kind, x_shape, kwargs, exc, match):
    x = np.zeros(x_shape, np.float32)
    with pytest.raises(exc, match=match):
        POOLS[kind](x, **kwargs)


@pytest.mark.parametrize("fn", [global_avg_pool, global_max_pool])
def test_global_pool_rejects_bad_rank(fn):
    with pytest.raises(ValueError, match=r"x must be 4-D .*got shape \(2, 3\)"):
        fn(np.zeros((2, 3), np.float32))
