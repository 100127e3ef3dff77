"""Training-throughput benchmark of jaxcnn against plain Flax and PyTorch.

Contract: the workloads are those of WORKLOADS.md (`WORKLOADS`: lenet5, cnn4, resnet18),
built from jaxcnn's model registry and trained with `jaxcnn.train.train_step` and SGD with
momentum on a fixed random batch. `compare(workload, ...)` returns one flat record with
images/s, step and compile times and, with `baselines=True`, the same for plain Flax and
PyTorch (when installed) timed interleaved in the same run, plus the ratios. `jaxcnn bench`
prints these records as JSON lines.
"""
from jaxcnn.bench.interleaved import available_baselines, compare
from jaxcnn.bench.runner import (STRATEGIES, Runner, default_cache_dir, enable_compile_cache,
                                 jaxcnn_runner)
from jaxcnn.bench.workloads import WORKLOADS, build_model, random_batch

__all__ = ["STRATEGIES", "Runner", "WORKLOADS", "available_baselines", "build_model", "compare",
           "default_cache_dir", "enable_compile_cache", "jaxcnn_runner", "random_batch"]
