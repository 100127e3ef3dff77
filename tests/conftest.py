"""Suite-wide settings: the JAX compilation cache shared by every process of a run, and the
limit of the few tests marked `long`, allowed to run longer than pytest-timeout's default
per-test limit (pyproject.toml).
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The test workers, and the subprocesses they start (the CLI, experiments, notebooks,
# multi-device runs), compile many of the same programs: LeNet-5's train step alone is
# built by dozens of tests. JAX's persistent cache lets each be compiled once per run (and
# once per machine across runs: the key covers the program, the options and the versions).
# Set through the environment, before JAX is imported, so subprocesses inherit it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".pytest_cache" / "jax"))
# JAX only caches compilations over 1 s by default; most of the suite's take 0.1-1 s.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
# Decoded image folders are cached under $JAXCNN_CACHE; the suite keeps its own, not ~/.cache.
os.environ.setdefault("JAXCNN_CACHE", str(ROOT / ".pytest_cache" / "jaxcnn"))

# Tests marked `long` train end to end in several processes (30-45 s each on 2 cores);
# they get this limit instead of the default one.
LONG_TEST_TIMEOUT = 600


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("long") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(LONG_TEST_TIMEOUT))
