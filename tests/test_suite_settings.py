"""The suite's own safety settings: a per-test time limit and a shared compilation cache."""
import os
import pathlib

from conftest import LONG_TEST_TIMEOUT


def test_every_test_has_a_time_limit_and_long_ones_the_long_limit(request):
    assert float(request.config.getini("timeout")) > 0  # pytest-timeout is installed and set
    for item in request.session.items:
        limit = item.get_closest_marker("timeout")
        if item.get_closest_marker("long"):
            assert limit is not None and limit.args == (LONG_TEST_TIMEOUT,), item.nodeid


def test_subprocesses_inherit_the_compilation_cache():
    cache = pathlib.Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    assert cache.parts[-2:] == (".pytest_cache", "jax")
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) < 1
