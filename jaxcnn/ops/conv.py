"""2D convolution as a pure function.

Contract:
    * ``x`` is NHWC, ``kernel`` is HWIO with ``I = C_in / groups`` and ``O``
      divisible by ``groups``; the result is NHWC with ``O`` channels.
    * Like every deep-learning framework this computes cross-correlation: the
      kernel is *not* flipped, so a hand-written matrix is applied as written.
    * Padding: ``"SAME"``/``"VALID"`` (any case), int, ``(ph, pw)`` or
      ``((top, bottom), (left, right))``; ``"SAME"`` is TF/XLA SAME.
    * The output spatial size equals :func:`jaxcnn.ops.shapes.conv_output_size`.
    * All argument checks use static shapes and raise before tracing, so they
      also fire inside ``jax.jit``.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from jaxcnn.ops import conv_fast
from jaxcnn.ops.shapes import (
    PaddingLike,
    check_rank,
    check_window_fits,
    explicit_padding,
    is_int,
    normalize_pair,
)

_OP = "conv2d"


def _check_groups(groups: Any, c_in: int, kernel_shape: tuple) -> int:
    """Validates ``groups`` against the input channels and the HWIO kernel."""
    if not is_int(groups) or groups < 1:
        raise ValueError(
            f"{_OP}: groups must be a positive int, got {groups!r}; use groups=1 for an "
            "ordinary convolution or groups=C_in for a depthwise one."
        )
    kh, kw, k_in, k_out = kernel_shape
    if c_in % groups:
        raise ValueError(
            f"{_OP}: groups={groups} does not divide the {c_in} input channels of x; "
            f"choose groups among the divisors of {c_in}."
        )
    if k_out % groups:
        raise ValueError(
            f"{_OP}: groups={groups} does not divide the {k_out} output channels of kernel "
            f"(shape {kernel_shape}); make O a multiple of groups."
        )
    if k_in * groups != c_in:
        raise ValueError(
            f"{_OP}: channel mismatch: x has {c_in} channels but kernel of shape "
            f"{kernel_shape} (HWIO) with groups={groups} expects I*groups = "
            f"{k_in}*{groups} = {k_in * groups}; use a kernel of shape "
            f"({kh}, {kw}, {c_in // groups}, {k_out}) or change groups."
        )
    return int(groups)


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    bias: Optional[jax.Array] = None,
    *,
    stride: Any = 1,
    padding: PaddingLike = "VALID",
    dilation: Any = 1,
    groups: int = 1,
) -> jax.Array:
    """2D cross-correlation of an NHWC batch with an HWIO kernel.

    Args:
        x: Input of shape ``(N, H, W, C_in)``.
        kernel: Filters of shape ``(KH, KW, C_in // groups, C_out)``.
        bias: Optional ``(C_out,)`` vector added to every output position.
        stride: Int or ``(sh, sw)``, positive.
        padding: ``"SAME"``, ``"VALID"`` (any case), int ``p``, ``(ph, pw)`` or
            ``((top, bottom), (left, right))``, non-negative.
        dilation: Kernel (rhs) dilation, int or ``(dh, dw)``, positive.
        groups: Number of channel groups (``C_in`` for depthwise conv).

    Returns:
        ``(N, H_out, W_out, C_out)`` with ``(H_out, W_out)`` given by
        :func:`jaxcnn.ops.shapes.conv_output_size`. Inputs of different dtypes
        are promoted to a common dtype first.

    Raises:
        ValueError: Wrong ranks, channel/group mismatch, bad bias shape,
            non-positive stride/dilation, bad or negative padding, or a
            (dilated) kernel larger than the padded input.
        TypeError: Arguments of an unsupported type.
    """
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    check_rank(x.shape, 4, "x", "(N, H, W, C)", op=_OP)
    check_rank(kernel.shape, 4, "kernel", "(KH, KW, C_in // groups, C_out) (HWIO)", op=_OP)
    groups = _check_groups(groups, x.shape[-1], tuple(kernel.shape))
    c_out = kernel.shape[-1]
    if bias is not None:
        bias = jnp.asarray(bias)
        if bias.shape != (c_out,):
            raise ValueError(
                f"{_OP}: bias must have shape ({c_out},) to match the kernel's {c_out} output "
                f"channels, got shape {tuple(bias.shape)}; pass bias=None or a vector of "
                f"length {c_out}."
            )
    stride = normalize_pair(stride, "stride")
    dilation = normalize_pair(dilation, "dilation")
    window = tuple(kernel.shape[:2])
    pads = explicit_padding(padding, x.shape[1:3], window, stride, dilation)
    check_window_fits(x.shape[1:3], window, dilation, pads, op=_OP)

    # lax requires both operands to share a dtype; promote like jnp would.
    dtype = jnp.result_type(x, kernel)
    y = conv_fast.conv(x.astype(dtype), kernel.astype(dtype), stride, pads, dilation, groups)
    if bias is not None:
        y = y + bias
    return y


__all__ = ["conv2d"]
