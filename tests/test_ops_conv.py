"""Tests for ``jaxcnn.ops.conv2d`` against the naive NumPy reference.

Covers strides 1-3, dilations 1-2, groups (1, 2, depthwise), every padding
form, odd and even sizes, shape agreement with ``conv_output_size``,
gradients (float64 finite differences) and argument validation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxcnn.ops import conv2d, conv_output_size
from tests.reference import conv2d_ref, ref_pads

RTOL = ATOL = 1e-5


def _inputs(seed, n, h, w, c, kh, kw, o, groups, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    k = rng.standard_normal((kh, kw, c // groups, o)).astype(dtype)
    b = rng.standard_normal((o,)).astype(dtype)
    return x, k, b


# (h, w, c, kh, kw, o, stride, padding, dilation, groups)
CASES = [
    (5, 5, 1, 3, 3, 1, 1, "VALID", 1, 1),
    (6, 7, 2, 3, 3, 3, 1, "SAME", 1, 1),
    (6, 6, 3, 2, 2, 4, 2, "same", 1, 1),
    (7, 5, 2, 3, 2, 2, 3, "SAME", 1, 1),
    (8, 8, 2, 3, 3, 2, 2, "valid", 1, 1),
    (7, 7, 2, 3, 3, 2, 1, "SAME", 2, 1),
    (8, 6, 2, 3, 3, 2, 2, "SAME", 2, 1),
    (9, 9, 1, 3, 3, 1, 1, "VALID", 2, 1),
    (5, 6, 2, 3, 3, 2, 1, 1, 1, 1),
    (5, 6, 2, 3, 3, 2, 2, 2, 1, 1),
    (6, 5, 2, 3, 2, 2, 1, (1, 0), 1, 1),
    (6, 5, 2, 2, 3, 2, (2, 1), ((0, 1), (2, 0)), 1, 1),
    (4, 4, 2, 3, 3, 2, 1, ((2, 1), (0, 2)), (1, 2), 1),
    (6, 6, 4, 3, 3, 4, 1, "SAME", 1, 2),
    (7, 6, 4, 2, 3, 6, 2, 1, 1, 2),
    (6, 6, 4, 3, 3, 4, 1, "SAME", 1, 4),
    (7, 7, 3, 3, 3, 6, 2, "VALID", 2, 3),
    (5, 5, 2, 1, 1, 3, 1, "VALID", 1, 1),
    (1, 1, 2, 1, 1, 2, 3, "SAME", 1, 1),
    (2, 3, 1, 3, 3, 1, 1, "SAME", 2, 1),
]


@pytest.mark.parametrize("h,w,c,kh,kw,o,stride,padding,dilation,groups", CASES)
def test_conv2d_matches_reference(h, w, c, kh, kw, o, stride, padding, dilation, groups):
    x, k, b = _inputs(0, 2, h, w, c, kh, kw, o, groups)
    kw_args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = conv2d(x, k, b, **kw_args)
    expected = conv2d_ref(x, k, b, **kw_args)
    assert y.dtype == jnp.float32
    assert y.shape == expected.shape
    assert tuple(y.shape[1:3]) == conv_output_size((h, w), (kh, kw), stride, padding, dilation)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=RTOL, atol=ATOL)


def test_conv2d_without_bias_and_under_jit():
    x, k, _ = _inputs(1, 1, 6, 6, 2, 3, 3, 3, 1)
    f = jax.jit(lambda x, k: conv2d(x, k, stride=2, padding="SAME"))
    np.testing.assert_allclose(
        np.asarray(f(x, k)), conv2d_ref(x, k, stride=2, padding="SAME"), rtol=RTOL, atol=ATOL
    )


def test_same_padding_splits_extra_on_bottom_right():
    # 4x4 ones, 2x2 ones kernel, SAME stride 1: total pad 1 goes to bottom/right,
    # so the last row/column sees only half the window.
    y = conv2d(np.ones((1, 4, 4, 1), np.float32), np.ones((2, 2, 1, 1), np.float32), padding="SAME")
    expected = np.array([[4, 4, 4, 2], [4, 4, 4, 2], [4, 4, 4, 2], [2, 2, 2, 1]])
    np.testing.assert_array_equal(np.asarray(y)[0, :, :, 0], expected)


def test_cross_correlation_not_convolution():
    x = np.zeros((1, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = 1.0
    k = np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1)
    y = conv2d(x, k, padding="SAME")
    # An impulse reproduces the kernel flipped under cross-correlation.
    np.testing.assert_array_equal(np.asarray(y)[0, :, :, 0], k[::-1, ::-1, 0, 0])


_padding = st.one_of(
    st.sampled_from(["SAME", "VALID", "same", "Valid"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2),
                                                                       st.integers(0, 2))),
)


@settings(max_examples=25, deadline=None, database=None)
@given(data=st.data())
def test_conv2d_hypothesis(data):
    h, w = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride = data.draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * 2)))
    dilation = data.draw(st.one_of(st.integers(1, 2), st.tuples(*[st.integers(1, 2)] * 2)))
    mode = data.draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    c, groups, o = {"plain": (3, 1, 2), "grouped": (4, 2, 4), "depthwise": (3, 3, 6)}[mode]
    padding = data.draw(_padding)
    x, k, b = _inputs(data.draw(st.integers(0, 2**16)), 2, h, w, c, kh, kw, o, groups)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    s = (stride, stride) if isinstance(stride, int) else stride
    pads = ref_pads(padding, (h, w), (kh, kw), s, d)
    fits = all(
        di * (ki - 1) + 1 <= n + p[0] + p[1] for n, ki, di, p in zip((h, w), (kh, kw), d, pads)
    )
    if not fits:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv2d(x, k, b, **kwargs)
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv_output_size((h, w), (kh, kw), stride, padding, dilation)
        return
    y = conv2d(x, k, b, **kwargs)
    assert tuple(y.shape[1:3]) == conv_output_size((h, w), (kh, kw), stride, padding, dilation)
    np.testing.assert_allclose(np.asarray(y), conv2d_ref(x, k, b, **kwargs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "stride,padding,dilation,groups",
    [(1, "VALID", 1, 1), (2, "SAME", 1, 2), (1, ((1, 0), (0, 2)), 2, 1), (2, 1, 1, 4)],
)
def test_conv2d_gradients(stride, padding, dilation, groups):
    with jax.enable_x64(True):
        x, k, b = _inputs(3, 2, 6, 5, 4, 3, 2, 4, groups, dtype=np.float64)
        args = (jnp.asarray(x), jnp.asarray(k), jnp.asarray(b))
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        check_grads(lambda x, k, b: conv2d(x, k, b, **kwargs), args, order=1, modes=["rev"])


def _x(shape=(1, 5, 5, 3)):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize(
    "x,kernel,kwargs,exc,match",
    [
        (_x((5, 5, 3)), _x((3, 3, 3, 2)), {}, ValueError, r"x must be 4-D .*got shape \(5, 5, 3\).*x\[None\]"),
        (_x(), _x((3, 3, 3)), {}, ValueError, r"kernel must be 4-D.*got shape \(3, 3, 3\)"),
        (_x(), _x((3, 3, 2, 4)), {}, ValueError, r"x has 3 channels.*expects I\*groups = 2\*1 = 2"),
        (_x((1, 5, 5, 4)), _x((3, 3, 2, 3)), {"groups": 2}, ValueError, r"groups=2 does not divide the 3 output"),
        (_x(), _x((3, 3, 1, 4)), {"groups": 2}, ValueError, r"groups=2 does not divide the 3 input channels"),
        (_x(), _x((3, 3, 3, 2)), {"groups": 0}, ValueError, r"groups must be a positive int, got 0"),
        (_x(), _x((7, 3, 3, 2)), {}, ValueError, r"kernel \(7, 3\) is larger than the padded input \(5, 5\)"),
        (_x(), _x((3, 3, 3, 2)), {"dilation": 3}, ValueError, r"effective size \(7, 7\).*padded input \(5, 5\)"),
        (_x(), _x((3, 3, 3, 2)), {"stride": 0}, ValueError, r"stride must be positive, got 0"),
        (_x(), _x((3, 3, 3, 2)), {"stride": (1, -1)}, ValueError, r"stride must be positive, got \(1, -1\)"),
        (_x(), _x((3, 3, 3, 2)), {"dilation": 0}, ValueError, r"dilation must be positive, got 0"),
        (_x(), _x((3, 3, 3, 2)), {"stride": 1.5}, TypeError, r"stride must be a positive int or a pair"),
        (_x(), _x((3, 3, 3, 2)), {"padding": "FULL"}, ValueError, r"padding='FULL'.*'SAME', 'VALID'"),
        (_x(), _x((3, 3, 3, 2)), {"padding": -1}, ValueError, r"padding must be non-negative, got -1"),
        (_x(), _x((3, 3, 3, 2)), {"padding": ((0, -1), (0, 0))}, ValueError, r"non-negative"),
        (_x(), _x((3, 3, 3, 2)), {"padding": 1.0}, TypeError, r"padding=1.0 has an unsupported type"),
    ],
)
def test_conv2d_rejects_bad_input(x, kernel, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv2d(x, kernel, **kwargs)


def test_conv2d_rejects_bad_bias():
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\).*got shape \(3,\)"):
        conv2d(_x(), _x((3, 3, 3, 2)), np.zeros(3, np.float32))


def test_conv2d_checks_fire_inside_jit():
    f = jax.jit(lambda x, k: conv2d(x, k))
    with pytest.raises(ValueError, match="x has 3 channels"):
        f(_x(), _x((3, 3, 2, 4)))
