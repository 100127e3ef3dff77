"""Faster formulations of CNN ops for XLA:CPU, chosen per platform.

Contract:
    * :func:`on_cpu` picks a formulation when the computation is *lowered*
      (``jax.lax.platform_dependent``): the fast one on CPU, the plain ``lax``
      one everywhere else, so GPU and TPU keep XLA's own kernels. It composes
      with ``jit``, ``grad``, ``jvp`` and ``vmap`` like any other JAX function.
    * Every fast formulation returns the same numbers as the plain one:
      outputs and gradients agree to float rounding (tests compare them with
      relative error <= 1e-5 in float32), ties included.
    * Pooling: windows that tile the input (stride == window, no padding) are
      reshaped to ``(N, H/kh, kh, W/kw, kw, C)``. XLA:CPU runs the gradient of
      ``reduce_window`` as a slow generic ``select_and_scatter`` /
      ``pad + reduce_window``; here the gradient is a fused elementwise
      ``where`` over the tiles instead, and the forward pass a reduction over
      the window axes (gradient measured 2x faster at LeNet-5's 128x28x28x6 and 12x at
      64x32x32x64, a cnn4 shape; ``jaxcnn bench`` shows the effect on training).
    * Max/min ties: XLA's ``select_and_scatter`` (the gradient of
      ``lax.reduce_window`` max/min) walks each window in row-major order and
      keeps the current pick while ``current >= candidate`` (``<=`` for min),
      so the *first* extremum in row-major order receives the whole gradient.
      :func:`tiled_extremum` gives it to the same cell, so its gradient equals
      the plain one bit for bit, infinities and ties included. Windows holding
      a NaN (forward value NaN in both) differ: here the first NaN gets the
      gradient, XLA's walk ends after the last NaN.
    * :func:`materialize` (identity elsewhere) returns normal finite values
      exactly; it flushes subnormals to zero and spreads a non-finite value to
      NaN over its group of :data:`STORE_WIDTH` (see its docstring).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

Pair = tuple[int, int]



def on_cpu(fast: Callable, plain: Callable, *args: jax.Array) -> jax.Array:
    """Computes ``fast(*args)`` when lowered for CPU and ``plain(*args)`` otherwise.

    Args:
        fast: The XLA:CPU formulation.
        plain: The reference ``lax`` formulation, used on GPU, TPU and others.
        *args: Array arguments passed to either function.

    Returns:
        The result of the formulation chosen for the platform being compiled for.
    """
    return lax.platform_dependent(*args, cpu=fast, default=plain)


def tiles_input(window: Pair, stride: Pair, pads: tuple) -> bool:
    """Whether pooling windows tile the input, so the tiled formulation applies.

    Args:
        window: ``(kh, kw)``.
        stride: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))`` explicit padding.

    Returns:
        True when ``stride == window`` and there is no padding (a remainder
        at the bottom/right is dropped, as VALID pooling does).
    """
    return tuple(stride) == tuple(window) and all(p == 0 for pair in pads for p in pair)


def _tiles(x: jax.Array, window: Pair) -> jax.Array:
    """Views ``(N, H, W, C)`` as ``(N, H//kh, kh, W//kw, kw, C)`` (H, W multiples)."""
    n, h, w, c = x.shape
    kh, kw = window
    return x.reshape(n, h // kh, kh, w // kw, kw, c)


def _crop(x: jax.Array, window: Pair) -> jax.Array:
    """Drops the bottom/right rows and columns that no VALID window covers."""
    kh, kw = window
    return x[:, : x.shape[1] // kh * kh, : x.shape[2] // kw * kw, :]


def _stored(x: jax.Array, width: int | None = None) -> jax.Array:
    """``x`` multiplied by the identity matrix, ``width`` values at a time.

    XLA:CPU fuses an elementwise producer into every consumer and recomputes it
    there; it has no "store this" instruction, but it never fuses a matmul into
    its consumers. The product is exact for normal finite values (full precision:
    each output is one value times 1 plus zeros); subnormals are flushed to zero,
    and a non-finite value makes the other values of its group of ``width`` NaN
    (``inf * 0``).

    Args:
        x: A float array whose size is a multiple of ``width``.
        width: Values per identity product; None for the size of the last axis.

    Returns:
        ``x``, computed once into memory.
    """
    width = width or x.shape[-1]
    flat = x.reshape(-1, width)
    eye = jnp.eye(width, dtype=flat.dtype)
    return jnp.dot(flat, eye, precision=lax.Precision.HIGHEST).reshape(x.shape)


STORE_WIDTH = 64
"""Values per identity product in :func:`materialize`: a few flops per value, and a
multiple of the channel counts of ResNet's blocks, so groups never span two pixels."""


@jax.custom_jvp
def materialize(x: jax.Array) -> jax.Array:
    """Returns ``x``; on XLA:CPU it is computed once and kept in memory.

    For a value built by a long elementwise chain that many ops read, such as the
    residual stream of a ResNet (BatchNorm, add, relu, block after block): XLA:CPU
    fuses the chain into each reader and recomputes it there, worst of all in the
    transposes that feed the convolutions' weight gradients, which recomputed the
    whole chain of a stage in transposed order (ResNet-18 train step 430 -> 360 ms on
    2 cores). Other platforms get ``x`` unchanged.

    Normal finite values are exact. Subnormals come back as zero (XLA:CPU's max,
    hence relu, already flushes them, so ``materialize(relu(z)) == relu(z)`` for
    every finite ``z``). A non-finite value makes the other values of its group of
    up to :data:`STORE_WIDTH` neighbours (in row-major order) NaN; a network whose
    activations overflow has a NaN loss either way.

    Args:
        x: Any array; non-float arrays, and float arrays whose size has no divisor
            of at least 8 among the divisors of :data:`STORE_WIDTH`, come back as is.

    Returns:
        ``x``. Its tangent (and gradient) passes through unchanged.
    """
    width = math.gcd(x.size, STORE_WIDTH)
    if width < 8 or not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    return on_cpu(functools.partial(_stored, width=width), lambda x: x, x)


@materialize.defjvp
def _materialize_jvp(primals, tangents):
    return materialize(primals[0]), tangents[0]


def _first_pick(tiles: jax.Array, extremum: jax.Array) -> jax.Array:
    """Row-major index of the first extremum of each window, the cell that gets the gradient.

    Without NaNs this is the cell XLA's select_and_scatter picks: its walk keeps
    the current pick while ``pick >= candidate`` (``<=`` for min), so it ends on
    the first extremum. In a window holding a NaN the first NaN is picked (the
    walk, for which every comparison with NaN is false, ends after the last NaN).
    The picks are stored (:func:`_stored`) rather than left to XLA:CPU, which
    fused them into the full-size gradient and recomputed them for every cell of
    the window (LeNet-5's train step 6.4 -> 4.4 ms, cnn4's 159 -> 138 ms on 2 cores).

    Args:
        tiles: ``(N, Ho, kh, Wo, kw, C)``.
        extremum: ``(N, Ho, Wo, C)``, the max (or min) of each window.

    Returns:
        ``(N, Ho, Wo, C)`` integer positions in ``[0, kh * kw)``.
    """
    cells = _cells_of(tiles)
    pick = jnp.full(extremum.shape, len(cells) - 1, jnp.float32)
    for k in range(len(cells) - 2, -1, -1):
        hit = (cells[k] == extremum) | jnp.isnan(cells[k])
        pick = jnp.where(hit, jnp.float32(k), pick)
    # A narrow index type: the positions are kept for the backward pass.
    return _stored(pick).astype(jnp.int8 if len(cells) <= 127 else jnp.int32)


def _cells(window: Pair, dtype) -> jax.Array:
    """``(1, 1, kh, 1, kw, 1)`` row-major cell positions, to compare with picks."""
    kh, kw = window
    shape = (1, 1, kh, 1, kw, 1)
    return lax.broadcasted_iota(dtype, shape, 2) * kw + lax.broadcasted_iota(dtype, shape, 4)


def _cells_of(tiles: jax.Array) -> list[jax.Array]:
    """The ``kh * kw`` cells of every window, in row-major order, each ``(N, Ho, Wo, C)``."""
    kh, kw = tiles.shape[2], tiles.shape[4]
    return [tiles[:, :, i, :, j, :] for i in range(kh) for j in range(kw)]


def _extremum(tiles: jax.Array, kind: str) -> jax.Array:
    # A reduction over the window axes rather than an elementwise max of the cells:
    # XLA:CPU fuses elementwise producers into their consumers, and the consumer here
    # includes the (C, H, W, N) transpose that feeds the next conv's weight gradient,
    # which then recomputed bias + relu + max from the 4x larger input in transposed
    # order (40 ms of cnn4's 180 ms step). A reduction is stored once and read back.
    return (jnp.max if kind == "max" else jnp.min)(tiles, axis=(2, 4))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _tiled_extremum(x: jax.Array, window: Pair, kind: str) -> jax.Array:
    return _extremum(_tiles(x, window), kind)


@_tiled_extremum.defjvp
def _tiled_extremum_jvp(window, kind, primals, tangents):
    # A linear rule in the tangent (a masked sum), so reverse mode transposes it
    # into a fused broadcast + select instead of select_and_scatter.
    (x,), (dx,) = primals, tangents
    tiles = _tiles(x, window)
    extremum = _extremum(tiles, kind)
    return extremum, _pick_tangent(_first_pick(tiles, extremum), dx, window)


@functools.partial(jax.checkpoint, static_argnums=(2,))
def _pick_tangent(pick: jax.Array, dx: jax.Array, window: Pair) -> jax.Array:
    # Rematerialised so that reverse mode keeps `pick`, not a full-size mask.
    chosen = pick[:, :, None, :, None, :] == _cells(window, pick.dtype)
    return jnp.where(chosen, _tiles(dx, window), jnp.zeros((), dx.dtype)).sum(axis=(2, 4))


def tiled_extremum(x: jax.Array, window: Pair, kind: str) -> jax.Array:
    """Max or min pooling with ``stride == window`` and VALID padding, by reshape.

    Args:
        x: ``(N, H, W, C)``; rows/columns beyond the last full window are dropped.
        window: ``(kh, kw)``, at most ``(H, W)``.
        kind: ``"max"`` or ``"min"``.

    Returns:
        ``(N, H // kh, W // kw, C)``, equal to ``lax.reduce_window`` max/min,
        with the same gradient (ties resolved like ``select_and_scatter``).
    """
    return _tiled_extremum(_crop(x, window), tuple(window), kind)


def tiled_sum(x: jax.Array, window: Pair) -> jax.Array:
    """Sum pooling with ``stride == window`` and VALID padding, by reshape.

    Args:
        x: ``(N, H, W, C)``; rows/columns beyond the last full window are dropped.
        window: ``(kh, kw)``.

    Returns:
        ``(N, H // kh, W // kw, C)``; its gradient is a broadcast (autodiff).
    """
    return functools.reduce(lax.add, _cells_of(_tiles(_crop(x, window), tuple(window))))


__all__ = ["STORE_WIDTH", "materialize", "on_cpu", "tiled_extremum", "tiled_sum", "tiles_input"]
