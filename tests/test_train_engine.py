"""jaxcnn.train engine: monitoring files, bfloat16, configs and the `train` command."""
import csv
import json
import pathlib
import time
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from zoo_utils import DelegatingDataset

from jaxcnn import cli, data, layers, models, train
from jaxcnn.train.config import TrainConfig, load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


class SmallNet(nn.Module):
    num_classes: int = 4
    input_shape: tuple = (6, 6, 1)
    dtype: object = None

    @nn.compact
    def __call__(self, x, train=False, capture_activations=False):
        x = layers.Conv2D(4, 3, dtype=self.dtype)(x)
        return layers.Dense(self.num_classes, dtype=self.dtype)(layers.Flatten()(x))


def _dataset(n=96, size=6, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.uniform(size=(n, size, size, 1)).astype(np.float32) * 0.1
    images[np.arange(n), labels, labels, 0] = 1.0
    return data.from_arrays(images, labels, num_classes=classes)


def test_monitor_writes_history_curves_tensorboard_and_a_bar(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    _, history = train.fit(SmallNet(), _dataset(), _dataset(seed=1), epochs=2, batch_size=8,
                           workdir=tmp_path, tensorboard=True, log_epochs=True)
    out, err = capsys.readouterr()
    assert "img_s=" in err and "loss=" in err and "acc=" in err  # tqdm writes to stderr
    logged = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["epoch"] for r in logged] == [1, 2]
    assert json.loads((tmp_path / "history.json").read_text()) == history
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and set(rows[0]) == {"epoch", "train_loss", "train_accuracy",
                                               "eval_loss", "eval_accuracy",
                                               "learning_rate", "seconds", "input_wait"}
    assert float(rows[1]["eval_loss"]) == pytest.approx(history[1]["eval_loss"])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_bfloat16_computes_in_bf16_keeps_fp32_state_and_a_close_loss():
    options = dict(epochs=4, batch_size=16, learning_rate=1e-2, progress=False)
    model, ds = SmallNet(), _dataset()
    full, full_history = train.fit(model, ds, ds, precision="float32", **options)
    half, half_history = train.fit(model, ds, ds, precision="bfloat16", **options)
    assert half.apply_fn.model.dtype == jnp.bfloat16
    logits = half.apply_fn(half.variables(), jnp.asarray(ds.images[:2]))
    assert logits.dtype == jnp.bfloat16
    float_leaves = [x for x in jax.tree.leaves((half.params, half.opt_state))
                    if jnp.issubdtype(x.dtype, jnp.floating)]
    assert float_leaves and all(x.dtype == jnp.float32 for x in float_leaves)
    # stated tolerance: per-epoch loss within 2% (relative) of float32 on this short run
    # (measured: 0.2%); the loss itself falls by a factor of 3.
    for h, f in zip(half_history, full_history):
        assert h["train_loss"] == pytest.approx(f["train_loss"], rel=0.02)
        assert h["eval_loss"] == pytest.approx(f["eval_loss"], rel=0.02)
    assert half_history[-1]["train_loss"] < 0.5 * half_history[0]["train_loss"]


def test_bad_arguments_are_refused_before_compiling():
    ds = _dataset()
    fit = lambda **kw: train.fit(SmallNet(), ds, epochs=1, batch_size=8, progress=False, **kw)
    with pytest.raises(ValueError, match="unknown strategy 'tpu'; choose one of jit, pmap, shar"):
        fit(strategy="tpu")
    with pytest.raises(ValueError, match="unknown precision 'float16'; choose one of float32, "):
        fit(precision="float16")
    with pytest.raises(ValueError, match="unknown schedule 'linear'; choose one of constant"):
        fit(schedule="linear")
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'; choose one of adagrad"):
        fit(optimizer="lamb")
    with pytest.raises(ValueError, match="resume=True needs the workdir"):
        fit(resume=True)
    with pytest.raises(ValueError, match="is a file, not a directory"):
        fit(workdir=__file__)
    with pytest.raises(ValueError, match="precision='bfloat16' needs a model with a `dtype`"):
        train.fit(layers.Flatten(), ds, epochs=1, batch_size=8, precision="bfloat16")
    with pytest.raises(ValueError, match=r"images of shape \(8, 8, 1\) but the model expects"):
        train.fit(SmallNet(), _dataset(size=8), epochs=1, batch_size=8)


def test_config_files_load_and_are_checked(tmp_path):
    for path in (ROOT / "experiments" / "configs").glob("*.toml"):
        assert isinstance(load_config(path), TrainConfig)
    assert load_config(ROOT / "experiments/configs/lenet5_digits.toml") == TrainConfig()
    bad = tmp_path / "bad.toml"
    bad.write_text('optimiser = "adam"\n')
    with pytest.raises(ValueError, match="unknown key 'optimiser'.*valid keys: model, dataset"):
        load_config(bad)
    bad.write_text('epochs = "ten"\n')
    with pytest.raises(ValueError, match="epochs in config file .* must be of type int, got 'ten'"):
        load_config(bad)
    bad.write_text("resume = 1\n")
    with pytest.raises(ValueError, match="resume in config file .* must be of type bool"):
        load_config(bad)


@pytest.mark.slow
def test_train_command_reads_a_config_and_flags_override_it(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('optimizer = "momentum"  # a comment\nlearning_rate = 0.05\nepochs = 5\n'
                      'schedule = "cosine"\nweight_decay = 1e-4\n')
    workdir = tmp_path / "run"
    assert cli.main(["train", "--config", str(config), "--epochs", "1", "--batch-size", "64",
                     "--workdir", str(workdir), "--quiet"]) == 0
    summary = json.loads((workdir / "run.json").read_text())
    assert summary["optimizer"] == "momentum" and summary["epochs"] == 1
    assert summary["schedule"] == "cosine" and summary["batch_size"] == 64
    assert summary["test_accuracy"] > 0.2  # twice chance after one epoch
    assert (workdir / "checkpoints").is_dir() and (workdir / "curves.png").is_file()
    assert cli.main(["train", "--schedule", "linear", "--workdir", str(workdir)]) == 2
    assert "unknown schedule 'linear'" in capsys.readouterr().err


def test_train_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    flags = ["--" + name.replace("_", "-") for name in TrainConfig.__dataclass_fields__]
    for flag in flags + ["--config", "--distributed", "--coordinator-address",
                         "--num-processes", "--process-id"]:
        assert flag in text, flag
    assert "jit (one device), pmap or sharded" in text and "(default: lenet5)" in text


def test_random_shift_moves_training_images_and_is_checked(capsys):
    from jaxcnn.train.recipe import augmentation

    assert augmentation(TrainConfig(random_shift=0.0)) is None
    shift = augmentation(TrainConfig(random_shift=0.25))
    image = jnp.zeros((1, 8, 8, 1)).at[0, 3:5, 3:5, 0].set(1.0)
    shifted = np.asarray(shift(jax.random.key(0), image))
    assert shifted.shape == image.shape and not np.allclose(shifted, image)
    # Zeros come in at the border; the content moves, so its mass stays near 4.
    assert shifted.min() >= 0 and abs(shifted.sum() - 4.0) < 1e-4
    with pytest.raises(ValueError, match=r"random_shift must be in \[0, 1\).*got 1.5"):
        augmentation(TrainConfig(random_shift=1.5))
    assert cli.main(["train", "--random-shift", "-0.1", "--workdir", "unused"]) == 2
    assert "random_shift must be in [0, 1)" in capsys.readouterr().err


@pytest.mark.slow
def test_train_reruns_never_destroy_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    quick = ["train", "--epochs", "1", "--batch-size", "64", "--quiet"]
    assert cli.main(quick) == 0
    workdir = tmp_path / "runs" / "lenet5-digits"  # runs/<model>-<dataset>
    first = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    assert {"run.json", "variables.msgpack", "history.json"} <= set(first)
    assert cli.main(quick) == 0  # the same run: continued, already finished
    assert cli.main([*quick, "--learning-rate", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "learning_rate: 0.003 in the run, 0.01 now" in err and "--overwrite" in err
    assert cli.main(["train", "--epochs", "2", "--batch-size", "64", "--quiet"]) == 2
    assert "pass extend=True (--extend)" in capsys.readouterr().err
    for name, content in first.items():
        if name != "run.json":  # rewritten by the rerun with the same weights
            assert (workdir / name).read_bytes() == content, name
    assert cli.main([*quick, "--learning-rate", "0.01", "--overwrite"]) == 0
    assert json.loads((workdir / "run.json").read_text())["learning_rate"] == 0.01


class SlowInput(DelegatingDataset):
    """Takes `delay` seconds to hand over each batch (a slow disk)."""

    def __init__(self, dataset, delay):
        super().__init__(dataset)
        self.delay = delay

    def batches(self, *args, **kwargs):
        for batch in self.dataset.batches(*args, **kwargs):
            time.sleep(self.delay)
            yield batch


def test_the_share_of_time_spent_waiting_for_input_is_recorded_and_warned_once():
    options = dict(epochs=2, batch_size=32, learning_rate=1e-3, progress=False)
    digits = data.load("digits", "train", image_size=(32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in-memory batches, prefetched: LeNet-5 never waits
        _, fast = train.fit(models.create("lenet5"), digits, **options)
    # 0.3-6% on a 2-core Intel Xeon (the first epoch includes compiling)
    assert all(0 <= r["input_wait"] < 0.2 for r in fast)
    ds = _dataset()
    with pytest.warns(UserWarning, match=r"epoch \d waited for its input \d+% of the time.*more "
                                         r"decoding workers") as caught:
        _, slow = train.fit(SmallNet(), SlowInput(ds, 0.05), **options)
    assert len([w for w in caught if "waited for its input" in str(w.message)]) == 1
    assert slow[-1]["input_wait"] > 0.5  # the first epoch also compiles
