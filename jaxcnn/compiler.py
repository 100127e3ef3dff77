"""XLA compiler options for CNNs, and a `jax.jit` that applies them.

Contract:
    * :func:`compiler_options` returns the options jaxcnn compiles its own steps with
      (train steps of the "jit" and "sharded" strategies, `jaxcnn bench`, evaluation,
      the visualizations) for a platform: :data:`CPU_OPTIONS` on CPU, nothing elsewhere,
      so GPU and TPU compile exactly as under plain `jax.jit`.
    * :func:`jit` is `jax.jit` with those options; pass ``compiler_options={}`` to it to
      get XLA's defaults, or any dict of XLA debug options to use instead.
    * Options are per compilation: nothing outside the functions compiled with them
      changes, and JAX's compilation cache keys on them.

Why: XLA:CPU (jaxlib 0.10) hands every large float convolution to YNNPACK by default.
On the 2-core AMD EPYC that the README's speed tables come from, XLA's own (Eigen)
convolution is as fast or faster for every convolution of ResNet-18 at batch 32 and for
their gradients: 288 ms per train step in total against 426 ms, the weight gradients most
of all (108 ms against 193 ms; ``experiments/bench_convs.py``). :data:`CPU_OPTIONS` keeps
XLA:CPU's default YNNPACK fusions for dots and reductions and leaves convolutions out;
``tests/test_compiler.py`` checks both. On other CPUs YNNPACK may win: compare with
``jaxcnn bench --xla-defaults`` and pass ``compiler_options={}`` to keep XLA's choice.
`jax.pmap` takes no compiler options, so the "pmap" strategy compiles with XLA's defaults.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import jax
import jax.numpy as jnp

YNN_FUSION_TYPES = ("LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT", "LIBRARY_FUSION_TYPE_REDUCE")
"""XLA:CPU's default YNNPACK fusion types (jaxlib 0.10) without individual convolutions."""

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ",".join(YNN_FUSION_TYPES)}
"""The XLA debug options jaxcnn compiles with on CPU."""

_log = logging.getLogger(__name__)


@functools.cache
def _accepted(options: tuple[tuple[str, str], ...]) -> bool:
    """Whether this jaxlib accepts `options` (XLA rejects unknown names and enum values).

    Args:
        options: The options as sorted ``(name, value)`` pairs (hashable for the cache).

    Returns:
        True if a small convolution compiles with them on the default backend.
    """
    probe = jax.jit(lambda x, k: jax.lax.conv(x, k, (1, 1), "SAME"))
    x, k = jnp.zeros((1, 32, 8, 8)), jnp.zeros((32, 32, 3, 3))
    try:
        probe.lower(x, k).compile(compiler_options=dict(options))
    except jax.errors.JaxRuntimeError as error:
        _log.warning("this jaxlib rejects jaxcnn's CPU compiler options (%s); compiling with "
                     "XLA's defaults instead.", error)
        return False
    return True


def compiler_options(platform: str | None = None) -> dict[str, Any]:
    """The XLA options jaxcnn compiles with on `platform`.

    Args:
        platform: "cpu", "gpu", "tpu", ...; None means `jax.default_backend()`.

    Returns:
        A new dict: :data:`CPU_OPTIONS` on CPU if this jaxlib accepts them, else empty.
    """
    return _options_for(platform)


def _options_for(platform: str | None) -> dict[str, Any]:
    """:func:`compiler_options` (a second name, as `jit` has a parameter of that name)."""
    platform = platform or jax.default_backend()
    if platform != "cpu" or not _accepted(tuple(sorted(CPU_OPTIONS.items()))):
        return {}
    return dict(CPU_OPTIONS)


def jit(fun: Callable | None = None, *, compiler_options: dict[str, Any] | None = None,
        **jit_kwargs) -> Callable:
    """`jax.jit(fun, **jit_kwargs)` compiled with jaxcnn's options for its platform.

    Usable as ``jit(f, ...)`` or as a decorator, ``@jit`` or ``@jit(static_argnums=0)``.
    The platform is looked up at the first call (or ``.lower``), not here, so a module
    that defines jitted functions at import time starts no JAX backend.

    Args:
        fun: The function to compile (None when used as ``@jit(...)``).
        compiler_options: None for :func:`compiler_options` of the platform (the
            ``backend`` keyword if given, else the default backend); a dict to use it
            instead (``{}``: XLA's defaults).
        **jit_kwargs: Any other `jax.jit` keyword (``donate_argnums``, shardings, ...).

    Returns:
        The jitted function; attributes such as ``lower`` and ``trace`` are `jax.jit`'s.
    """
    if fun is None:
        return functools.partial(jit, compiler_options=compiler_options, **jit_kwargs)
    return _Jitted(fun, compiler_options, jit_kwargs)


class _Jitted:
    """A `jax.jit` of `fun` created at first use, with the options for the platform then."""

    def __init__(self, fun: Callable, compiler_options: dict[str, Any] | None,
                 jit_kwargs: dict[str, Any]):
        functools.update_wrapper(self, fun)
        self._fun, self._options, self._jit_kwargs = fun, compiler_options, jit_kwargs

    @functools.cached_property
    def _jitted(self) -> Callable:
        options = self._options
        if options is None:
            options = _options_for(self._jit_kwargs.get("backend"))
        return jax.jit(self._fun, compiler_options=options or None, **self._jit_kwargs)

    def __call__(self, *args, **kwargs):
        return self._jitted(*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # not found on the instance: not jax.jit's either
            raise AttributeError(name)
        return getattr(self._jitted, name)


__all__ = ["CPU_OPTIONS", "YNN_FUSION_TYPES", "compiler_options", "jit"]
