"""Convolution formulations for XLA:CPU, chosen when lowering for the CPU.

Contract:
    * :func:`conv` equals ``lax.conv_general_dilated`` (NHWC input, HWIO kernel):
      outputs, gradients, forward-mode and higher derivatives agree to float
      rounding (tests compare them with relative error <= 1e-5 in float32). On
      any platform other than CPU it *is* the plain convolution
      (``jax.lax.platform_dependent``), so GPU and TPU keep XLA's kernels.
    * Input gradient in canonical layout. JAX transposes ``conv(t, k)`` with
      respect to ``t`` into a convolution whose kernel spec swaps I and O.
      Inside ``lax.scan``/``while`` loops XLA:CPU leaves that convolution
      non-canonical and runs it on a slow generic loop (the gradient-ascent step
      of ``jaxcnn.viz`` took 3.4 ms instead of 0.9 ms on 2 cores). The tangent
      here is written on the HWOI view of the kernel, so it transposes into an
      HWIO convolution, which XLA hands to its fast library kernels.
    * Few input channels (LeNet's 1- and 6-channel layers, the RGB input layer
      of cnn4 and ResNet): XLA:CPU runs such convolutions and their gradients
      far below its matmul rate. :func:`rows_unrolled` writes the convolution
      as one matmul: each matmul row concatenates the ``KH`` input row segments
      that ``tile`` neighbouring outputs read, ``(N*H_out*tiles,
      KH*window*C_in)``, and multiplies them by a banded (Toeplitz) matrix built
      from the kernel, ``(KH*window*C_in, tile*C_out)``. The band holds zeros,
      so the matmul does about ``window / KW`` times the convolution's
      multiplications; :func:`unroll_tile` picks whole rows where that stays
      small (LeNet) and short tiles otherwise. Its input and kernel gradients
      are matmuls as well (autodiff). Measured on 2 cores: LeNet-5's train step
      9.9 -> 6.4 ms; cnn4's first layer forward 32 -> 14 ms, kernel gradient
      22 -> 7 ms.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn.ops.cpu_fast import on_cpu

Pair = tuple[int, int]
# Largest input-channel count and extra-multiplication factor (W_pad / KW) for which
# the row-unrolled matmul beat XLA:CPU's convolution on LeNet-5's layers (2 cores).
UNROLL_MAX_CHANNELS = 8
UNROLL_MAX_REDUNDANCY = 8
UNROLL_MAX_BAND = 1 << 20  # elements of the banded matrix
# Output columns of the matmul when rows are split into tiles (cnn4's first layer: 4 x 32).
UNROLL_MIN_COLUMNS = 128


def _plain_conv(x, kernel, spec: tuple, kernel_layout: str = "HWIO") -> jax.Array:
    """``lax.conv_general_dilated`` with the static ``spec`` = (stride, pads, dilation, groups)."""
    stride, pads, dilation, groups = spec
    return lax.conv_general_dilated(x, kernel, stride, pads, rhs_dilation=dilation,
                                    dimension_numbers=("NHWC", kernel_layout, "NHWC"),
                                    feature_group_count=groups)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def hwoi_tangent_conv(x: jax.Array, kernel: jax.Array, spec: tuple) -> jax.Array:
    """The plain convolution, with a tangent whose transpose is an HWIO convolution.

    Args:
        x: ``(N, H, W, C_in)``.
        kernel: ``(KH, KW, C_in, C_out)``.
        spec: ``(stride, pads, dilation, groups)`` with ``groups == 1``.

    Returns:
        ``(N, H_out, W_out, C_out)``, the plain convolution.
    """
    return _plain_conv(x, kernel, spec)


@hwoi_tangent_conv.defjvp
def hwoi_tangent_conv_jvp(spec, primals, tangents):
    (x, kernel), (dx, dkernel) = primals, tangents
    # The same linear map in dx, written on the HWOI view of the kernel: its
    # transpose (the input gradient) is then an HWIO convolution.
    along_x = _plain_conv(dx, jnp.swapaxes(kernel, 2, 3), spec, "HWOI")
    return hwoi_tangent_conv(x, kernel, spec), along_x + _plain_conv(x, dkernel, spec)


def _out_size(size: int, k: int, stride: int, dilation: int) -> int:
    return (size - (k - 1) * dilation - 1) // stride + 1


def _band(window: int, tile: int, kw: int, stride: int, dilation: int, dtype) -> np.ndarray:
    """``(KW, window, tile)`` 0/1: input column p feeds output column q through tap j."""
    p = np.arange(window)[None, :, None]
    q = np.arange(tile)[None, None, :]
    j = np.arange(kw)[:, None, None]
    return (p == q * stride + j * dilation).astype(dtype)


def unroll_tile(x_shape: tuple, kernel_shape: tuple, spec: tuple) -> int | None:
    """Output columns per matmul row for :func:`rows_unrolled`, or None where it does not pay.

    Args:
        x_shape: ``(N, H, W, C_in)``.
        kernel_shape: ``(KH, KW, C_in, C_out)``.
        spec: ``(stride, pads, dilation, groups)``.

    Returns:
        None for grouped convolutions and for more than ``UNROLL_MAX_CHANNELS`` input
        channels. Otherwise whole rows (``W_out``) when the band wastes at most
        ``UNROLL_MAX_REDUNDANCY`` times the work, else tiles of the fewest columns
        (a power of two) that give the matmul ``UNROLL_MIN_COLUMNS`` output columns.
    """
    (_, sw), pads, (_, dw), groups = spec
    kh, kw, c_in, c_out = kernel_shape
    if groups != 1 or c_in > UNROLL_MAX_CHANNELS:
        return None
    w_pad = x_shape[2] + sum(pads[1])
    w_out = _out_size(w_pad, kw, sw, dw)
    tile = w_out
    if w_pad > UNROLL_MAX_REDUNDANCY * kw:
        tile = min(w_out, 1 << max(0, math.ceil(math.log2(UNROLL_MIN_COLUMNS / c_out))))
    window = (tile - 1) * sw + (kw - 1) * dw + 1
    if window > UNROLL_MAX_REDUNDANCY * kw or kh * window * c_in * tile * c_out > UNROLL_MAX_BAND:
        return None
    return tile


def rows_unrolled(x: jax.Array, kernel: jax.Array, spec: tuple, tile: int | None = None) -> jax.Array:
    """The convolution as one matmul of stacked input windows and a banded kernel matrix.

    Every matmul row holds, for ``tile`` neighbouring outputs of one output row, the
    ``KH`` input row segments they read, ``KH * window * C_in`` values; the banded
    matrix ``(KH * window * C_in, tile * C_out)`` places the kernel taps.

    Args:
        x: ``(N, H, W, C_in)``.
        kernel: ``(KH, KW, C_in, C_out)``.
        spec: ``(stride, pads, dilation, groups)`` with ``groups == 1``.
        tile: output columns per matmul row; ``None`` for whole rows.

    Returns:
        ``(N, H_out, W_out, C_out)``, equal to the plain convolution.
    """
    (sh, sw), pads, (dh, dw), _ = spec
    kh, kw, c_in, c_out = kernel.shape
    x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    n, h_pad, w_pad, _ = x.shape
    h_out, w_out = _out_size(h_pad, kh, sh, dh), _out_size(w_pad, kw, sw, dw)
    tile = w_out if tile is None else min(tile, w_out)
    tiles, step = -(-w_out // tile), tile * sw
    window = (tile - 1) * sw + (kw - 1) * dw + 1
    chunks = -(-window // step)  # consecutive chunks of `step` columns a window spans
    width = (tiles + chunks - 1) * step
    x = x[:, :, :width] if width <= w_pad else jnp.pad(x, ((0, 0), (0, 0), (0, width - w_pad), (0, 0)))
    segments = []
    for i in range(kh):
        rows = lax.slice_in_dim(x, i * dh, i * dh + (h_out - 1) * sh + 1, sh, axis=1)
        rows = rows.reshape(n * h_out, tiles + chunks - 1, step * c_in)
        spans = jnp.concatenate([rows[:, k:k + tiles] for k in range(chunks)], axis=-1)
        segments.append(spans[:, :, :window * c_in])
    stacked = jnp.concatenate(segments, axis=-1).reshape(n * h_out * tiles, kh * window * c_in)
    band = _band(window, tile, kw, sw, dw, kernel.dtype)
    toeplitz = jnp.einsum("jpq,ijco->ipcqo", band, kernel).reshape(kh * window * c_in, tile * c_out)
    y = (stacked @ toeplitz).reshape(n, h_out, tiles * tile, c_out)
    return y[:, :, :w_out]


def conv(x: jax.Array, kernel: jax.Array, stride: Pair, pads: tuple, dilation: Pair,
         groups: int) -> jax.Array:
    """``lax.conv_general_dilated`` (NHWC, HWIO) in the formulation XLA:CPU runs fastest.

    Args:
        x: ``(N, H, W, C_in)``.
        kernel: ``(KH, KW, C_in // groups, C_out)``, same dtype as ``x``.
        stride: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))``, non-negative.
        dilation: Kernel dilation ``(dh, dw)``.
        groups: Feature groups.

    Returns:
        The convolution, equal to the plain one; its derivatives equal the plain
        ones to float rounding. On platforms other than CPU it is the plain one.
    """
    spec = (tuple(stride), tuple(tuple(p) for p in pads), tuple(dilation), int(groups))
    plain = lambda x, k: _plain_conv(x, k, spec)
    if groups != 1:  # the HWOI view only describes ungrouped kernels
        return plain(x, kernel)
    tile = unroll_tile(x.shape, kernel.shape, spec)
    if tile is not None:
        fast = lambda x, k: rows_unrolled(x, k, spec, tile)
    else:
        fast = lambda x, k: hwoi_tangent_conv(x, k, spec)
    return on_cpu(fast, plain, x, kernel)


__all__ = ["conv", "hwoi_tangent_conv", "rows_unrolled", "unroll_tile"]
