"""Tests for `jaxcnn.compiler`: the XLA options jaxcnn compiles with, and `jaxcnn.jit`."""
import collections
import json
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn import cli, compiler
from jaxcnn.bench import runner
from jaxcnn.bench.workloads import build_model, make_optimizer, random_batch
from jaxcnn.train import create_state, make_parallel, train_step
from jaxcnn.train.losses import make_loss

CPU = jax.default_backend() == "cpu"


def ynn_fusions_by_root(hlo: str) -> collections.Counter:
    """How many YNNPACK fusions the compiled HLO has, by the opcode of their root."""
    roots = collections.Counter()
    for called in re.findall(r"calls=(%[\w.]+), .*__ynn_fusion", hlo):
        body = hlo[hlo.index(f"{called} ("):]
        body = body[:body.index("\n}\n")]
        roots[re.search(r"ROOT \S+ = \S+ (\w+)\(", body).group(1)] += 1
    return roots


def _step_and_args(name="cnn4", batch=4):
    state = create_state(build_model(name), make_optimizer(), seed=0)
    return state, random_batch(name, batch)


@pytest.mark.skipif(not CPU, reason="XLA:CPU options")
def test_cpu_options_leave_only_convolutions_to_xla():
    state, batch = _step_and_args()
    default = jax.jit(train_step).lower(state, batch).compile().as_text()
    ours = compiler.jit(train_step).lower(state, batch).compile().as_text()
    default_roots, our_roots = ynn_fusions_by_root(default), ynn_fusions_by_root(ours)
    assert default_roots["convolution"] > 0, "XLA:CPU no longer gives convolutions to YNNPACK"
    assert our_roots["convolution"] == 0
    # Dots and reductions keep XLA:CPU's default library fusions: YNN_FUSION_TYPES is the
    # default list without convolutions.
    del default_roots["convolution"]
    assert our_roots == default_roots


def test_options_apply_on_cpu_only():
    assert compiler.compiler_options("gpu") == {}
    assert compiler.compiler_options("tpu") == {}
    if CPU:
        assert compiler.compiler_options() == compiler.CPU_OPTIONS
        assert compiler.compiler_options("cpu") is not compiler.CPU_OPTIONS  # a copy


@pytest.mark.skipif(not CPU, reason="XLA:CPU options")
def test_explicit_options_replace_jaxcnns():
    state, batch = _step_and_args()
    hlo = compiler.jit(train_step, compiler_options={}).lower(state, batch).compile().as_text()
    assert ynn_fusions_by_root(hlo)["convolution"] > 0


@pytest.mark.parametrize("name", ["lenet5", "cnn4", "resnet18"])
def test_jit_gives_jax_jits_numbers(name):
    model = build_model(name)
    x = random_batch(name, 4)["image"]
    variables = model.init(jax.random.key(0), x[:1], train=False)
    logit = lambda x, v: model.apply(v, x, train=False)[:, 0].sum()
    for fn, args in ((lambda v, x: model.apply(v, x, train=False), (variables, x)),
                     (jax.grad(logit), (x, variables))):
        np.testing.assert_allclose(jaxcnn.jit(fn)(*args), jax.jit(fn)(*args),
                                   rtol=1e-5, atol=1e-6)


def test_jit_as_decorator_keeps_jit_keywords_and_attributes():
    @compiler.jit(static_argnums=1)
    def scale(x, factor):
        """Multiplies."""
        return x * factor

    assert scale.__name__ == "scale" and scale.__doc__ == "Multiplies."
    np.testing.assert_array_equal(scale(jnp.ones(3), 2), [2.0, 2.0, 2.0])
    assert scale.lower(jnp.ones(3), 2).compile()(jnp.ones(3)).shape == (3,)
    with pytest.raises(AttributeError):
        scale._no_such_attribute


@pytest.mark.skipif(not CPU, reason="XLA:CPU options")
def test_train_steps_compile_with_the_options():
    state, batch = _step_and_args()
    parallel = make_parallel("jit", make_loss("cross_entropy"))
    hlo = parallel.train_fn.lower(state, batch).compile().as_text()
    assert ynn_fusions_by_root(hlo)["convolution"] == 0
    step, state, batch = runner._place("jit", state, batch)
    assert ynn_fusions_by_root(step.lower(state, batch).compile().as_text())["convolution"] == 0
    step, state, batch = runner._place("jit", state, batch, compiler_options={})
    assert ynn_fusions_by_root(step.lower(state, batch).compile().as_text())["convolution"] > 0


def test_importing_jaxcnn_starts_no_backend():
    # Module-level `compiler.jit` functions look the platform up at their first call, so
    # settings that must come before the backend starts still work after `import jaxcnn`.
    code = ("import jax, jaxcnn\n"
            "jax.config.update('jax_num_cpu_devices', 3)\n"
            "print(jax.device_count())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={"JAX_PLATFORMS": "cpu", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"


def test_cli_bench_reports_xla_defaults(tmp_path, capsys):
    tiny = ["--steps", "1", "--rounds", "1", "--warmup", "0", "--compile-cache", str(tmp_path)]
    assert cli.main(["bench", "--workload", "lenet5", *tiny, "--xla-defaults"]) == 0
    assert json.loads(capsys.readouterr().out)["xla_defaults"] is True


def test_options_this_jaxlib_rejects_fall_back_to_xla_defaults(caplog):
    bad = (("xla_cpu_experimental_ynn_fusion_type", "LIBRARY_FUSION_TYPE_NO_SUCH_TYPE"),)
    with caplog.at_level("WARNING", logger="jaxcnn.compiler"):
        assert compiler._accepted(bad) is False
    assert "compiling with XLA's defaults instead" in caplog.text
    assert compiler._accepted(tuple(sorted(compiler.CPU_OPTIONS.items()))) is True
