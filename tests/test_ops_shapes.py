"""Tests for argument normalisation and output-size arithmetic.

The key property: ``conv_output_size``/``pool_output_size`` equal the shape
the ops return (checked with ``jax.eval_shape`` over a grid and hypothesis),
and reduce to the classic ``(n - f + 2p) / s + 1`` and to ``ceil(n / s)``
for SAME.
"""

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcnn.ops import (
    avg_pool,
    conv2d,
    conv_output_size,
    explicit_padding,
    max_pool,
    normalize_padding,
    normalize_pair,
    pool_output_size,
    same_padding_1d,
)


@pytest.mark.parametrize(
    "n,f,p,s,expected",
    [(32, 5, 0, 1, 28), (7, 3, 1, 2, 4), (227, 11, 0, 4, 55), (28, 5, 2, 1, 28), (6, 3, 0, 3, 2)],
)
def test_seed_formula(n, f, p, s, expected):
    assert conv_output_size(n, f, s, p) == (n - f + 2 * p) // s + 1 == expected
    assert conv_output_size((n, n), f, s, p) == (expected, expected)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 9])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2])
def test_same_is_ceil_n_over_stride(n, k, s, d):
    assert conv_output_size(n, k, s, "SAME", d) == math.ceil(n / s)
    assert conv_output_size(n, k, s, "same", d) == math.ceil(n / s)
    before, after = same_padding_1d(n, k, s, d)
    assert after - before in (0, 1)


def test_dilation_and_asymmetric_padding():
    # Effective kernel 2*(3-1)+1 = 5: (10 + 1 + 2 - 5) // 2 + 1 = 5.
    assert conv_output_size(10, 3, 2, (1, 2), 2) == 5
    assert conv_output_size((10, 6), (3, 1), (2, 1), ((1, 2), (0, 0)), (2, 1)) == (5, 6)


def test_pool_stride_defaults_to_window():
    assert pool_output_size(7, 2) == 3
    assert pool_output_size((7, 9), (2, 3)) == (3, 3)
    assert pool_output_size(7, 2, padding="SAME") == 4
    assert pool_output_size(7, 3, 1, 1) == 7


def test_int_vs_pair_padding_meaning():
    # For one dimension a pair is (before, after); for 2-D it is (ph, pw).
    assert conv_output_size(5, 3, 1, (0, 2)) == 5
    assert conv_output_size((5, 5), 3, 1, (0, 2)) == (3, 7)


def test_explicit_padding_forms():
    assert explicit_padding("VALID", (5, 5), 3) == ((0, 0), (0, 0))
    assert explicit_padding("same", (4, 4), 2) == ((0, 1), (0, 1))
    assert explicit_padding("SAME", (5, 6), (3, 3), 2, (2, 1)) == ((2, 2), (0, 1))
    assert explicit_padding(1, (5, 5), 3) == ((1, 1), (1, 1))
    assert explicit_padding((1, 2), (5, 5), 3) == ((1, 1), (2, 2))
    assert explicit_padding(((0, 1), (2, 3)), (5, 5), 3) == ((0, 1), (2, 3))
    assert normalize_padding("Valid") == "VALID"
    assert normalize_padding([[0, 1], [2, 3]]) == ((0, 1), (2, 3))


def test_normalize_pair():
    assert normalize_pair(3, "window") == (3, 3)
    assert normalize_pair((2, 1), "stride") == (2, 1)
    assert normalize_pair(np.int64(2), "stride") == (2, 2)


@pytest.mark.parametrize(
    "value,exc,match",
    [
        (0, ValueError, r"stride must be positive, got 0"),
        ((1, 0), ValueError, r"stride must be positive, got \(1, 0\)"),
        (1.0, TypeError, r"stride must be a positive int or a pair.*got 1.0"),
        (True, TypeError, r"stride must be a positive int or a pair"),
        ((1, 2, 3), TypeError, r"got \(1, 2, 3\); pass e.g. stride=2"),
    ],
)
def test_normalize_pair_rejects(value, exc, match):
    with pytest.raises(exc, match=match):
        normalize_pair(value, "stride")


@pytest.mark.parametrize(
    "padding,exc,match",
    [
        ("full", ValueError, r"padding='full' is not a known padding mode; valid strings are 'SAME', 'VALID'"),
        (-1, ValueError, r"padding must be non-negative, got -1"),
        ((1, -2), ValueError, r"non-negative, got \(1, -2\)"),
        (((0, 0), (0, -1)), ValueError, r"non-negative"),
        (None, TypeError, r"padding=None has an unsupported type"),
        (((0, 0), 1), TypeError, r"invalid entry 1"),
    ],
)
def test_normalize_padding_rejects(padding, exc, match):
    with pytest.raises(exc, match=match):
        normalize_padding(padding)


@pytest.mark.parametrize(
    "args,exc,match",
    [
        ((5, 7), ValueError, r"conv_output_size: kernel \(7, 1\) is larger than the padded input"),
        (((5, 5), 3, 1, "VALID", 3), ValueError, r"effective size \(7, 7\)"),
        ((0, 1), ValueError, r"n must be a positive int, got 0"),
        ((5, 3, 0), ValueError, r"stride must be a positive int, got 0"),
        ((5, 3, 1, "full"), ValueError, r"not a known padding mode"),
        ((5, 3, 1, ((1, 1), (1, 1))), TypeError, r"invalid entry"),
    ],
)
def test_conv_output_size_rejects(args, exc, match):
    with pytest.raises(exc, match=match):
        conv_output_size(*args)


def test_pool_output_size_rejects_pad_not_smaller_than_window():
    with pytest.raises(ValueError, match=r"too large for window"):
        pool_output_size(5, 2, 1, 2)
    with pytest.raises(ValueError, match=r"too large for window"):
        pool_output_size((5, 5), 2, 1, ((0, 0), (2, 0)))


def _conv_shape(hw, c, kernel, stride, padding, dilation, groups):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = jax.ShapeDtypeStruct((1, *hw, c), np.float32)
    k = jax.ShapeDtypeStruct((kh, kw, c // groups, 2 * groups), np.float32)
    fn = lambda x, k: conv2d(x, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return tuple(jax.eval_shape(fn, x, k).shape[1:3])


@pytest.mark.parametrize("hw", [(1, 1), (5, 5), (6, 9), (8, 7)])
@pytest.mark.parametrize("kernel", [1, 3, (2, 3)])
@pytest.mark.parametrize("stride", [1, 2, (3, 1)])
@pytest.mark.parametrize("padding", ["SAME", "VALID", 1, (0, 2), ((1, 0), (2, 1))])
@pytest.mark.parametrize("dilation", [1, 2])
def test_conv_output_size_equals_op_shape(hw, kernel, stride, padding, dilation):
    try:
        expected = conv_output_size(hw, kernel, stride, padding, dilation)
    except ValueError:
        with pytest.raises(ValueError, match="larger than the padded input"):
            _conv_shape(hw, 2, kernel, stride, padding, dilation, 1)
        return
    assert _conv_shape(hw, 2, kernel, stride, padding, dilation, 1) == expected
    assert _conv_shape(hw, 2, kernel, stride, padding, dilation, 2) == expected


@pytest.mark.parametrize("hw", [(1, 1), (4, 4), (5, 7), (9, 6)])
@pytest.mark.parametrize("window", [1, 2, 3, (3, 2)])
@pytest.mark.parametrize("stride", [None, 1, 2, (3, 1)])
@pytest.mark.parametrize("padding", ["SAME", "VALID", 1, ((0, 1), (1, 0))])
def test_pool_output_size_equals_op_shape(hw, window, stride, padding):
    x = jax.ShapeDtypeStruct((1, *hw, 2), np.float32)
    try:
        expected = pool_output_size(hw, window, stride, padding)
    except ValueError:
        for op in (max_pool, avg_pool):
            with pytest.raises(ValueError):
                jax.eval_shape(lambda x: op(x, window, stride, padding), x)
        return
    for op in (max_pool, avg_pool):
        assert tuple(jax.eval_shape(lambda x: op(x, window, stride, padding), x).shape[1:3]) == expected


@settings(max_examples=25, deadline=None, database=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    pad=st.one_of(
        st.sampled_from(["SAME", "VALID"]), st.integers(0, 3), st.tuples(*[st.integers(0, 3)] * 2)
    ),
)
def test_1d_and_2d_agree_and_match_formula(n, k, s, d, pad):
    try:
        out = conv_output_size(n, k, s, pad, d)
    except ValueError:
        return
    if pad == "SAME":
        assert out == math.ceil(n / s)
    else:
        lo, hi = {"VALID": (0, 0)}.get(pad, (pad, pad) if isinstance(pad, int) else pad)
        assert out == math.floor((n + lo + hi - d * (k - 1) - 1) / s) + 1
    # In 2-D a (before, after) pair must be nested per dimension.
    pad2 = (pad, pad) if isinstance(pad, tuple) else pad
    assert conv_output_size((n, n), k, s, pad2, d) == (out, out)
