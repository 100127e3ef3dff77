"""Tests for `jaxcnn.bench` and the `jaxcnn bench` command."""
import json
import os
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import bench, cli
from jaxcnn.bench import interleaved
from jaxcnn.bench import flax_baseline, runner
from jaxcnn.bench.workloads import build_model, make_optimizer, random_batch
from jaxcnn.train import create_state, train_step

REQUIRED = {"workload", "batch", "img_per_s", "compile_s", "step_ms", "device", "jax_version"}
TINY = ["--steps", "1", "--rounds", "1", "--warmup", "0"]


def _count(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def _init_shapes(model, shape):
    x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def test_cli_bench_prints_a_json_line_and_fills_the_compile_cache(tmp_path, capsys):
    status = cli.main(["bench", "--workload", "lenet5", *TINY, "--compile-cache", str(tmp_path)])
    record = json.loads(capsys.readouterr().out.strip())
    assert status == 0
    assert REQUIRED <= set(record)
    assert record["workload"] == "lenet5" and record["batch"] == 128
    assert record["img_per_s"] > 0 and record["compile_s"] > 0
    assert record["img_per_s"] == pytest.approx(128 / (record["step_ms"] / 1e3), rel=1e-2)
    assert any(tmp_path.iterdir()), "the persistent compilation cache stayed empty"


@pytest.mark.parametrize("kwargs,match", [
    ({"workload": "alexnet"}, "unknown workload 'alexnet'; choose one of lenet5, cnn4, resnet18"),
    ({"workload": "lenet5", "strategy": "pjit"}, "unknown strategy 'pjit'"),
    ({"workload": "lenet5", "precision": "float16"}, "unknown precision 'float16'"),
    ({"workload": "lenet5", "steps": 0}, "steps must be a positive integer, got 0"),
    ({"workload": "lenet5", "batch": -4}, "batch must be a positive integer, got -4"),
    ({"workload": "lenet5", "warmup": -1}, "warmup must be >= 0"),
    ({"workload": "lenet5", "torch_threads": 0}, "torch_threads must be a positive integer"),
])
def test_compare_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.compare(**kwargs)


def test_cli_reports_a_bad_workload(capsys):
    assert cli.main(["bench", "--workload", "vgg", *TINY]) == 2
    assert "unknown workload 'vgg'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_flax_baseline_has_the_same_parameters_as_the_jaxcnn_model(name):
    spec = bench.WORKLOADS[name]
    ours = _init_shapes(build_model(name), spec.input_shape)
    theirs = _init_shapes(flax_baseline.MODELS[name](spec.num_classes, jnp.float32),
                          spec.input_shape)
    assert _count(ours["params"]) == _count(theirs["params"])
    assert _count(ours.get("batch_stats", {})) == _count(theirs.get("batch_stats", {}))


@pytest.mark.parametrize("name,published", [("lenet5", 63_802), ("cnn4", 1_290_946),
                                            ("resnet18", 11_173_962)])
def test_torch_baseline_has_the_same_parameters_as_the_jaxcnn_model(name, published):
    pytest.importorskip("torch")
    from jaxcnn.bench import torch_baseline

    spec = bench.WORKLOADS[name]
    torch_count = sum(p.numel() for p in torch_baseline.MODELS[name](spec.num_classes).parameters())
    ours = _count(_init_shapes(build_model(name), spec.input_shape)["params"])
    assert torch_count == ours == published


def test_strategies_take_the_same_step_on_one_device():
    state = create_state(build_model("lenet5"), make_optimizer(), seed=0)
    batch = random_batch("lenet5", 8)
    results = {}
    for strategy in bench.STRATEGIES:
        fresh = jax.tree.map(lambda x: x.copy() if hasattr(x, "copy") else x, state)  # donated
        step, placed_state, placed_batch = runner._place(strategy, fresh, batch)
        new_state, metrics = step(placed_state, placed_batch)
        squeeze = (lambda x: x[0]) if strategy == "pmap" else (lambda x: x)
        results[strategy] = (jax.tree.map(squeeze, new_state.params), squeeze(metrics["loss"]))
    for strategy in ("pmap", "sharded"):
        np.testing.assert_allclose(results[strategy][1], results["jit"][1], rtol=1e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                     results[strategy][0], results["jit"][0])


def test_bench_optimizer_and_batch_train_the_model():
    # The bench times jaxcnn.train.train_step with SGD + momentum on a fixed random
    # batch; a few steps on that batch must lower the loss.
    state = create_state(build_model("lenet5"), make_optimizer(), seed=0)
    batch = random_batch("lenet5", 16)
    step = jax.jit(train_step)
    state, first = step(state, batch)
    for _ in range(5):
        state, last = step(state, batch)
    assert float(last["loss"]) < float(first["loss"])


def test_default_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert bench.default_cache_dir() == tmp_path / "jaxcnn" / "jax"


def test_available_baselines_always_include_flax():
    assert bench.available_baselines()[0] == "flax"


@pytest.mark.slow
def test_compare_with_baselines_reports_ratios(tmp_path):
    record = bench.compare("lenet5", batch=16, steps=2, rounds=2, warmup=0, baselines=True,
                           cache=str(tmp_path), torch_threads=1)
    for peer in bench.available_baselines():
        assert record[f"{peer}_img_per_s"] > 0
        ratio = record["img_per_s"] / record[f"{peer}_img_per_s"]
        assert record[f"jaxcnn_over_{peer}"] == pytest.approx(ratio, rel=0.02)
    assert record["flax_version"] == flax.__version__
    if "torch" in bench.available_baselines():
        assert record["torch_device"] == "cpu x1 threads"


def _cli_with_devices(args, devices):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.run([sys.executable, "-m", "jaxcnn", "bench", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["pmap", "sharded"])
def test_multi_device_strategies_run_and_refuse_an_unsplittable_batch(strategy, tmp_path):
    common = ["--workload", "lenet5", "--strategy", strategy, *TINY, "--compile-cache", str(tmp_path)]
    done = _cli_with_devices([*common, "--batch-size", "8"], 2)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["device"].endswith("x2")
    bad = _cli_with_devices([*common, "--batch-size", "7"], 2)
    assert bad.returncode == 2
    assert "batch size 7 cannot be split over 2 devices" in bad.stderr


def test_worker_failure_is_reported():
    worker_spec = {"peer": "jaxcnn", "workload": "lenet5", "batch": 128, "precision": "float32",
                   "strategy": "bogus", "cache": None, "torch_threads": None}
    with pytest.raises(RuntimeError, match="jaxcnn benchmark worker exited with status 1"):
        interleaved._Worker(worker_spec)
