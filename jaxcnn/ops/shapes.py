"""Argument normalisation, validation and output-size arithmetic for 2D ops.

Contract:
    * Every check here runs in plain Python on static values (ints, strings,
      array ``.shape`` tuples), so it happens before JAX traces or compiles
      anything, including inside ``jax.jit`` where shapes are static.
    * Bad input raises ``ValueError`` (bad value) or ``TypeError`` (bad type)
      with a message that names the argument, shows the value received,
      states what was expected and suggests a fix.
    * Padding forms accepted everywhere: ``"SAME"`` / ``"VALID"`` (any case),
      an int ``p`` (p on all four sides), a pair ``(ph, pw)`` (symmetric per
      dimension) or ``((top, bottom), (left, right))``.
    * ``"SAME"`` is the TF/XLA rule: output = ceil(n / stride) and the total
      padding is split with the extra cell on the bottom/right, also for
      dilated kernels.
    * Output size along one dimension is
      ``floor((n + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1``,
      the classic ``(n - f + 2p) / s + 1`` generalised to asymmetric padding
      and dilation.
"""

from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

import numpy as np

Pair = Tuple[int, int]
Pads2D = Tuple[Pair, Pair]
PaddingLike = Union[str, int, Sequence[Any]]

PADDING_MODES = ("SAME", "VALID")

_PADDING_HELP = (
    "expected 'SAME' or 'VALID' (case-insensitive), a non-negative int p, "
    "a pair (ph, pw), or ((top, bottom), (left, right))"
)


def is_int(value: Any) -> bool:
    """Returns True for Python/NumPy integers, excluding bools.

    Args:
        value: Anything.

    Returns:
        Whether ``value`` is an integer usable as a size.
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(value: Any, name: str) -> int:
    """Validates a single positive integer.

    Args:
        value: The value to check.
        name: Argument name used in the error message.

    Returns:
        ``value`` as a Python int.

    Raises:
        TypeError: If ``value`` is not an int.
        ValueError: If ``value`` is not positive.
    """
    if not is_int(value):
        raise TypeError(
            f"{name} must be a positive int, got {value!r} of type "
            f"{type(value).__name__}; pass e.g. {name}=2."
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}; pass e.g. {name}=1.")
    return int(value)


def normalize_pair(value: Any, name: str) -> Pair:
    """Normalises an int or a pair of ints to a pair of positive ints.

    Used for kernel sizes, windows, strides and dilations.

    Args:
        value: An int ``v`` (meaning ``(v, v)``) or a length-2 sequence of ints.
        name: Argument name used in the error message.

    Returns:
        ``(height_value, width_value)`` as Python ints.

    Raises:
        TypeError: If ``value`` is neither an int nor a pair of ints.
        ValueError: If any entry is not positive.
    """
    if is_int(value):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        pair = tuple(value)
    else:
        raise TypeError(
            f"{name} must be a positive int or a pair of positive ints, got {value!r}; "
            f"pass e.g. {name}=2 or {name}=(2, 1)."
        )
    if min(pair) < 1:
        raise ValueError(
            f"{name} must be positive, got {value!r}; pass e.g. {name}=1 or {name}=(1, 1)."
        )
    return int(pair[0]), int(pair[1])


def _pad_pair(value: Any, padding: Any) -> Pair:
    """Validates one ``(before, after)`` pair of non-negative ints."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value)):
        raise TypeError(f"padding has an invalid entry {value!r} in {padding!r}; {_PADDING_HELP}.")
    if min(value) < 0:
        raise ValueError(
            f"padding must be non-negative, got {padding!r}; use padding=0 or 'VALID' "
            "for no padding (negative padding/cropping is not supported)."
        )
    return int(value[0]), int(value[1])


def _padding_mode(padding: str) -> str:
    """Upper-cases and validates a padding string."""
    mode = padding.upper()
    if mode not in PADDING_MODES:
        raise ValueError(
            f"padding={padding!r} is not a known padding mode; valid strings are "
            f"{', '.join(repr(m) for m in PADDING_MODES)} (case-insensitive), or pass "
            "explicit ints such as padding=1."
        )
    return mode


def normalize_padding(padding: PaddingLike) -> Union[str, Pads2D]:
    """Normalises a 2D padding specification.

    Args:
        padding: ``"SAME"``/``"VALID"`` (any case), an int ``p``, a pair
            ``(ph, pw)`` or ``((top, bottom), (left, right))``.

    Returns:
        ``"SAME"``, ``"VALID"`` or ``((top, bottom), (left, right))`` ints.

    Raises:
        ValueError: Unknown padding string or negative padding.
        TypeError: Any other form.
    """
    if isinstance(padding, str):
        return _padding_mode(padding)
    if is_int(padding):
        p = _pad_pair((padding, padding), padding)
        return (p, p)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(is_int(v) for v in padding):
            ph = _pad_pair((padding[0], padding[0]), padding)
            pw = _pad_pair((padding[1], padding[1]), padding)
            return (ph, pw)
        return (_pad_pair(padding[0], padding), _pad_pair(padding[1], padding))
    raise TypeError(f"padding={padding!r} has an unsupported type; {_PADDING_HELP}.")


def normalize_padding_1d(padding: Any) -> Union[str, Pair]:
    """Normalises the padding of a single dimension.

    Args:
        padding: ``"SAME"``/``"VALID"`` (any case), an int ``p`` or a pair
            ``(before, after)``.

    Returns:
        ``"SAME"``, ``"VALID"`` or ``(before, after)`` ints.

    Raises:
        ValueError: Unknown padding string or negative padding.
        TypeError: Any other form.
    """
    if isinstance(padding, str):
        return _padding_mode(padding)
    if is_int(padding):
        return _pad_pair((padding, padding), padding)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        return _pad_pair(padding, padding)
    raise TypeError(
        f"padding={padding!r} has an unsupported type for a single dimension; expected "
        "'SAME', 'VALID', a non-negative int or a pair (before, after)."
    )


def effective_size(kernel: int, dilation: int = 1) -> int:
    """Returns the extent covered by a dilated kernel: ``dilation * (kernel - 1) + 1``.

    Args:
        kernel: Kernel (window) size.
        dilation: Dilation rate.

    Returns:
        The effective kernel size.
    """
    return dilation * (kernel - 1) + 1


def same_padding_1d(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> Pair:
    """TF/XLA "SAME" padding for one dimension.

    The output size is ``ceil(n / stride)``; the padding needed to reach it is
    split in two with the odd cell going after (bottom/right).

    Args:
        n: Input size.
        kernel: Kernel size.
        stride: Stride.
        dilation: Dilation rate.

    Returns:
        ``(before, after)``.
    """
    out = ceil_div(n, stride)
    total = max((out - 1) * stride + effective_size(kernel, dilation) - n, 0)
    return total // 2, total - total // 2


def explicit_padding(
    padding: PaddingLike,
    in_hw: Sequence[int],
    window_hw: Any,
    stride_hw: Any = 1,
    dilation_hw: Any = 1,
) -> Pads2D:
    """Resolves any padding form to explicit ``((top, bottom), (left, right))``.

    Args:
        padding: Any accepted padding form (see module docstring).
        in_hw: Input spatial size ``(H, W)``.
        window_hw: Kernel/window size, int or pair.
        stride_hw: Stride, int or pair.
        dilation_hw: Dilation, int or pair.

    Returns:
        ``((top, bottom), (left, right))`` as Python ints.
    """
    pad = normalize_padding(padding)
    if pad == "VALID":
        return ((0, 0), (0, 0))
    if pad == "SAME":
        window = normalize_pair(window_hw, "window")
        stride = normalize_pair(stride_hw, "stride")
        dilation = normalize_pair(dilation_hw, "dilation")
        return tuple(  # type: ignore[return-value]
            same_padding_1d(int(n), k, s, d)
            for n, k, s, d in zip(in_hw, window, stride, dilation)
        )
    return pad  # type: ignore[return-value]


def output_size_1d(n: int, kernel: int, stride: int, pads: Pair, dilation: int = 1) -> int:
    """The output-size formula for one dimension (no validation).

    Args:
        n: Input size.
        kernel: Kernel size.
        stride: Stride.
        pads: ``(before, after)`` padding.
        dilation: Dilation rate.

    Returns:
        ``floor((n + before + after - dilation*(kernel-1) - 1) / stride) + 1``;
        zero or negative when the kernel does not fit.
    """
    return (n + pads[0] + pads[1] - effective_size(kernel, dilation)) // stride + 1


def check_window_fits(
    in_hw: Sequence[int],
    window_hw: Pair,
    dilation_hw: Pair,
    pads: Pads2D,
    *,
    op: str,
    what: str = "kernel",
) -> None:
    """Raises if a (dilated) window is larger than the padded input.

    Args:
        in_hw: Input spatial size ``(H, W)``.
        window_hw: Window/kernel size pair.
        dilation_hw: Dilation pair.
        pads: Explicit padding ``((top, bottom), (left, right))``.
        op: Name of the calling op, for the message.
        what: Name of the window argument, for the message.

    Raises:
        ValueError: If the window does not fit in some dimension.
    """
    eff = tuple(effective_size(k, d) for k, d in zip(window_hw, dilation_hw))
    padded = tuple(int(n) + p[0] + p[1] for n, p in zip(in_hw, pads))
    if eff[0] > padded[0] or eff[1] > padded[1]:
        dil = ""
        if max(dilation_hw) > 1:
            dil = f" with dilation {tuple(dilation_hw)} (effective size {eff})"
        raise ValueError(
            f"{op}: {what} {tuple(window_hw)}{dil} is larger than the padded input "
            f"{padded} (input {tuple(int(n) for n in in_hw)} plus padding {pads}); "
            f"use a smaller {what}/dilation, more padding, or padding='SAME'."
        )


def check_pool_padding(pads: Pads2D, window_hw: Pair, *, op: str) -> None:
    """Raises if a pooling pad is so large that a window could hold only padding.

    Such windows would produce -inf/+inf (max/min) or divide by zero (avg), so
    every pad must be smaller than the window along its dimension. "SAME"
    padding always satisfies this.

    Args:
        pads: Explicit padding ``((top, bottom), (left, right))``.
        window_hw: Window size pair.
        op: Name of the calling op, for the message.

    Raises:
        ValueError: If some pad is >= the window size along its dimension.
    """
    for (before, after), k in zip(pads, window_hw):
        if before >= k or after >= k:
            raise ValueError(
                f"{op}: padding {pads} is too large for window {tuple(window_hw)}; every "
                "pad must be smaller than the window along its dimension so that no "
                "window covers only padding. Use less padding or padding='SAME'."
            )


def check_rank(shape: Sequence[int], rank: int, name: str, layout: str, *, op: str) -> None:
    """Raises if an array does not have the expected number of dimensions.

    Args:
        shape: The array's shape.
        rank: Required number of dimensions.
        name: Argument name, for the message.
        layout: Human-readable expected layout, e.g. ``"(N, H, W, C)"``.
        op: Name of the calling op, for the message.

    Raises:
        ValueError: If ``len(shape) != rank``.
    """
    if len(shape) != rank:
        hint = " add a batch axis with x[None]" if name == "x" and len(shape) == rank - 1 else ""
        raise ValueError(
            f"{op}: {name} must be {rank}-D {layout}, got shape {tuple(shape)} "
            f"({len(shape)}-D);{hint or ' reshape it to ' + layout}."
        )


def conv_output_size(
    n: Union[int, Sequence[int]],
    kernel: Any,
    stride: Any = 1,
    padding: PaddingLike = "VALID",
    dilation: Any = 1,
) -> Union[int, Pair]:
    """Output spatial size of a convolution, identical to the shape ``conv2d`` returns.

    Args:
        n: Input size: an int (one dimension) or a pair ``(H, W)``.
        kernel: Kernel size; int for 1-D, int or pair for 2-D.
        stride: Stride; int for 1-D, int or pair for 2-D.
        padding: For 1-D: ``"SAME"``, ``"VALID"``, an int or ``(before, after)``.
            For 2-D: any form ``conv2d`` accepts (a pair means ``(ph, pw)``).
        dilation: Dilation; int for 1-D, int or pair for 2-D.

    Returns:
        An int for int ``n``, else ``(H_out, W_out)``.

    Raises:
        ValueError: Invalid sizes/padding, or a kernel larger than the padded input.
        TypeError: Arguments of the wrong type.
    """
    op = "conv_output_size"
    if is_int(n):
        n = positive_int(n, "n")
        k = positive_int(kernel, "kernel")
        s = positive_int(stride, "stride")
        d = positive_int(dilation, "dilation")
        pad = normalize_padding_1d(padding)
        if pad == "SAME":
            pad = same_padding_1d(n, k, s, d)
        elif pad == "VALID":
            pad = (0, 0)
        check_window_fits((n, 1), (k, 1), (d, 1), (pad, (0, 0)), op=op)
        return output_size_1d(n, k, s, pad, d)
    hw = normalize_pair(n, "n")
    k2 = normalize_pair(kernel, "kernel")
    s2 = normalize_pair(stride, "stride")
    d2 = normalize_pair(dilation, "dilation")
    pads = explicit_padding(padding, hw, k2, s2, d2)
    check_window_fits(hw, k2, d2, pads, op=op)
    return tuple(  # type: ignore[return-value]
        output_size_1d(*args) for args in zip(hw, k2, s2, pads, d2)
    )


def pool_output_size(
    n: Union[int, Sequence[int]],
    window: Any,
    stride: Any = None,
    padding: PaddingLike = "VALID",
) -> Union[int, Pair]:
    """Output spatial size of a pooling op, identical to the shape the pools return.

    Args:
        n: Input size: an int (one dimension) or a pair ``(H, W)``.
        window: Window size; int for 1-D, int or pair for 2-D.
        stride: Stride, defaults to ``window`` (Keras convention).
        padding: As for :func:`conv_output_size`.

    Returns:
        An int for int ``n``, else ``(H_out, W_out)``.

    Raises:
        ValueError: Invalid sizes/padding, a window larger than the padded
            input, or a pad not smaller than the window.
        TypeError: Arguments of the wrong type.
    """
    stride = window if stride is None else stride
    out = conv_output_size(n, window, stride, padding, 1)
    if is_int(n):
        pad = normalize_padding_1d(padding)
        if pad == "SAME":
            return out
        pad = (0, 0) if pad == "VALID" else pad
        check_pool_padding((pad, (0, 0)), (int(window), 1), op="pool_output_size")
        return out
    hw = normalize_pair(n, "n")
    win = normalize_pair(window, "window")
    pads = explicit_padding(padding, hw, win, stride, 1)
    check_pool_padding(pads, win, op="pool_output_size")
    return out


def ceil_div(a: int, b: int) -> int:
    """Integer ``ceil(a / b)`` for positive ints.

    Args:
        a: Numerator.
        b: Denominator.

    Returns:
        ``math.ceil(a / b)`` computed exactly.
    """
    return -(-a // b)


__all__ = [
    "PADDING_MODES",
    "ceil_div",
    "check_pool_padding",
    "check_rank",
    "check_window_fits",
    "conv_output_size",
    "effective_size",
    "explicit_padding",
    "is_int",
    "normalize_padding",
    "normalize_padding_1d",
    "normalize_pair",
    "output_size_1d",
    "pool_output_size",
    "positive_int",
    "same_padding_1d",
]
