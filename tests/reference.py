"""Naive NumPy reference implementations used to test ``jaxcnn.ops``.

Contract:
    * Written directly from the definitions, independently of ``jaxcnn`` and
      without JAX/lax: explicit zero padding with ``np.pad``, Python loops over
      output positions, explicit group and dilation handling.
    * Everything is computed in float64.
    * Padding forms: ``"SAME"``/``"VALID"`` (any case), int, ``(ph, pw)`` or
      ``((top, bottom), (left, right))``. SAME follows TF: output
      ``ceil(n / stride)``, total padding split with the extra cell after.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf


def _pair(v):
    """int -> (v, v); pair -> tuple."""
    return (v, v) if isinstance(v, int) else tuple(v)


def ref_pads(padding, in_hw, window_hw, stride_hw, dilation_hw=(1, 1)):
    """Explicit ((top, bottom), (left, right)) padding from any padding form."""
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return ((0, 0), (0, 0))
        pads = []
        for n, k, s, d in zip(in_hw, window_hw, stride_hw, dilation_hw):
            out = math.ceil(n / s)
            extent = d * (k - 1) + 1
            total = max((out - 1) * s + extent - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    a, b = padding
    if isinstance(a, int):
        return ((a, a), (b, b))
    return (tuple(a), tuple(b))


def conv2d_ref(x, kernel, bias=None, stride=1, padding="VALID", dilation=1, groups=1):
    """Grouped, dilated, strided 2D cross-correlation, NHWC x HWIO -> NHWC."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, c = x.shape
    kh, kw, cin_g, cout = kernel.shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    (pt, pb), (pl, pr) = ref_pads(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out_h = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cout_g = cout // groups
    out = np.zeros((n, out_h, out_w, cout))
    for i in range(out_h):
        for j in range(out_w):
            for o in range(cout):
                g = o // cout_g
                acc = np.zeros(n)
                for a in range(kh):
                    for b in range(kw):
                        row = i * sh + a * dh
                        col = j * sw + b * dw
                        patch = xp[:, row, col, g * cin_g:(g + 1) * cin_g]
                        acc += patch @ kernel[a, b, :, o]
                out[:, i, j, o] = acc
    if bias is not None:
        out += np.asarray(bias, np.float64)
    return out


def pool_ref(x, window, stride=None, padding="VALID", kind="max", count_include_pad=False):
    """Pooling where each window is clipped to the image (padding cells excluded).

    ``kind`` is one of "max", "min", "sum", "avg". For "avg" the divisor is the
    number of real cells, or the full window size if ``count_include_pad``.
    """
    x = np.asarray(x, np.float64)
    n, h, w, c = x.shape
    kh, kw = _pair(window)
    sh, sw = _pair(window if stride is None else stride)
    (pt, pb), (pl, pr) = ref_pads(padding, (h, w), (kh, kw), (sh, sw))
    out_h = (h + pt + pb - kh) // sh + 1
    out_w = (w + pl + pr - kw) // sw + 1
    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * sh - pt, j * sw - pl
            cells = x[:, max(r0, 0):min(r0 + kh, h), max(c0, 0):min(c0 + kw, w), :]
            if kind == "max":
                out[:, i, j] = cells.max(axis=(1, 2))
            elif kind == "min":
                out[:, i, j] = cells.min(axis=(1, 2))
            elif kind == "sum":
                out[:, i, j] = cells.sum(axis=(1, 2))
            else:
                count = kh * kw if count_include_pad else cells.shape[1] * cells.shape[2]
                out[:, i, j] = cells.sum(axis=(1, 2)) / count
    return out


def dense_ref(x, kernel, bias=None):
    """Sum over the input features with explicit loops over outputs."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    out = np.zeros(x.shape[:-1] + (kernel.shape[1],))
    for o in range(kernel.shape[1]):
        out[..., o] = (x * kernel[:, o]).sum(axis=-1)
    if bias is not None:
        out += np.asarray(bias, np.float64)
    return out


def relu_ref(x):
    """max(x, 0)."""
    return np.where(x > 0, x, 0.0)


def sigmoid_ref(x):
    """1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def tanh_ref(x):
    """tanh from its exponential definition."""
    x = np.asarray(x, np.float64)
    return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))


def softmax_ref(x, axis=-1):
    """exp(x) / sum(exp(x)), shifted by the max for stability."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def leaky_relu_ref(x, negative_slope=0.01):
    """x if x >= 0 else slope * x."""
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, x, negative_slope * x)


def gelu_ref(x, approximate=False):
    """x * Phi(x) via erf, or the tanh approximation."""
    x = np.asarray(x, np.float64)
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))
