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
    * Few input channels on narrow rows (LeNet's 1- and 6-channel layers):
      XLA:CPU runs such convolutions and their gradients far below its matmul
      rate. :func:`rows_unrolled` writes the convolution as one matmul: each
      output row is the concatenation of the ``KH`` input rows it reads,
      ``(N*H_out, KH*W_pad*C_in)``, times a banded (Toeplitz) matrix built from
      the kernel, ``(KH*W_pad*C_in, W_out*C_out)``. The band holds zeros, so the
      matmul does ``W_pad / KW`` times the convolution's multiplications;
      :func:`unrolls` accepts it only where that and the band's size stay small.
      Its input and kernel gradients are matmuls as well (autodiff).
"""

from __future__ import annotations

import functools

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


def _band(w_pad: int, w_out: int, kw: int, stride: int, dilation: int, dtype) -> np.ndarray:
    """``(KW, W_pad, W_out)`` 0/1: input column p feeds output column q through tap j."""
    p, q, j = np.arange(w_pad)[None, :, None], np.arange(w_out)[None, None, :], np.arange(kw)[:, None, None]
    return (p == q * stride + j * dilation).astype(dtype)


def unrolls(x_shape: tuple, kernel_shape: tuple, spec: tuple) -> bool:
    """Whether :func:`rows_unrolled` is the faster CPU formulation for these shapes.

    Args:
        x_shape: ``(N, H, W, C_in)``.
        kernel_shape: ``(KH, KW, C_in, C_out)``.
        spec: ``(stride, pads, dilation, groups)``.

    Returns:
        True for ungrouped convolutions with at most ``UNROLL_MAX_CHANNELS`` input
        channels whose band wastes at most ``UNROLL_MAX_REDUNDANCY`` times the
        work and has at most ``UNROLL_MAX_BAND`` elements.
    """
    (_, sw), pads, (_, dw), groups = spec
    kh, kw, c_in, c_out = kernel_shape
    w_pad = x_shape[2] + sum(pads[1])
    w_out = _out_size(w_pad, kw, sw, dw)
    band = kh * w_pad * c_in * w_out * c_out
    return (groups == 1 and c_in <= UNROLL_MAX_CHANNELS and w_pad <= UNROLL_MAX_REDUNDANCY * kw
            and band <= UNROLL_MAX_BAND)


def rows_unrolled(x: jax.Array, kernel: jax.Array, spec: tuple) -> jax.Array:
    """The convolution as one matmul of stacked input rows and a banded kernel matrix.

    Args:
        x: ``(N, H, W, C_in)``.
        kernel: ``(KH, KW, C_in, C_out)``.
        spec: ``(stride, pads, dilation, groups)`` with ``groups == 1``.

    Returns:
        ``(N, H_out, W_out, C_out)``, equal to the plain convolution.
    """
    (sh, sw), pads, (dh, dw), _ = spec
    kh, kw, c_in, c_out = kernel.shape
    x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    n, h_pad, w_pad, _ = x.shape
    h_out, w_out = _out_size(h_pad, kh, sh, dh), _out_size(w_pad, kw, sw, dw)
    rows = [lax.slice_in_dim(x, i * dh, i * dh + (h_out - 1) * sh + 1, sh, axis=1)
            for i in range(kh)]
    stacked = jnp.concatenate([r.reshape(n * h_out, w_pad * c_in) for r in rows], axis=-1)
    band = _band(w_pad, w_out, kw, sw, dw, kernel.dtype)
    toeplitz = jnp.einsum("jpq,ijco->ipcqo", band, kernel).reshape(kh * w_pad * c_in, w_out * c_out)
    return (stacked @ toeplitz).reshape(n, h_out, w_out, c_out)


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
    if unrolls(x.shape, kernel.shape, spec):
        fast = lambda x, k: rows_unrolled(x, k, spec)
    else:
        fast = lambda x, k: hwoi_tangent_conv(x, k, spec)
    return on_cpu(fast, plain, x, kernel)


__all__ = ["conv", "hwoi_tangent_conv", "rows_unrolled", "unrolls"]
