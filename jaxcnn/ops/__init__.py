"""Pure-function CNN ops on NHWC arrays with HWIO kernels (no Flax).

Contract:
    * Every op is a pure function of its array arguments (plus a PRNG key for
      ``dropout``) and works eagerly, under ``jax.jit`` and under ``jax.grad``.
    * Argument checks run in Python on static shapes and raise ``ValueError``
      or ``TypeError`` before any tracing, with messages that name the
      argument, the value received, what was expected and how to fix it.
    * ``conv2d`` is cross-correlation (no kernel flip), as in every DL framework.
    * Output sizes are given by :func:`conv_output_size` and
      :func:`pool_output_size`, which match the shapes the ops return.
    * ``kernels`` holds hand-made filters (Sobel, sharpen, blur, ...).
    * ``materialize`` returns its argument, kept in memory on XLA:CPU (for values
      that many ops read, such as a ResNet's residual stream).
"""

from jaxcnn.ops import kernels
from jaxcnn.ops.activations import gelu, leaky_relu, relu, sigmoid, softmax, tanh
from jaxcnn.ops.conv import conv2d
from jaxcnn.ops.core import dense, dropout, flatten
from jaxcnn.ops.cpu_fast import materialize
from jaxcnn.ops.pool import (
    adaptive_avg_pool,
    avg_pool,
    global_avg_pool,
    global_max_pool,
    max_pool,
    min_pool,
    sum_pool,
)
from jaxcnn.ops.shapes import (
    PADDING_MODES,
    check_rank,
    check_window_fits,
    conv_output_size,
    effective_size,
    explicit_padding,
    normalize_padding,
    normalize_pair,
    pool_output_size,
    same_padding_1d,
)

__all__ = [
    "PADDING_MODES",
    "adaptive_avg_pool",
    "avg_pool",
    "check_rank",
    "check_window_fits",
    "conv2d",
    "conv_output_size",
    "dense",
    "dropout",
    "effective_size",
    "explicit_padding",
    "flatten",
    "gelu",
    "global_avg_pool",
    "global_max_pool",
    "kernels",
    "leaky_relu",
    "materialize",
    "max_pool",
    "min_pool",
    "normalize_padding",
    "normalize_pair",
    "pool_output_size",
    "relu",
    "same_padding_1d",
    "sigmoid",
    "softmax",
    "sum_pool",
    "tanh",
]
