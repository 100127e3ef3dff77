"""jaxcnn.runs: the one owner of a run directory's files."""
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models, runs

HISTORY = [{"epoch": 1, "train_loss": 1.5, "eval_accuracy": 0.5},
           {"epoch": 2, "train_loss": 0.5, "eval_accuracy": 0.75}]


def _variables(model, seed=0):
    return model.init(jax.random.key(seed), jnp.zeros((1, *model.input_shape)), train=False)


def test_files_round_trip_and_leave_no_temporary_files(tmp_path):
    run = runs.RunDir(tmp_path / "new" / "run")
    model = models.create("lenet5", num_classes=3)
    variables = _variables(model)
    run.write_history(HISTORY)
    run.write_curves(HISTORY)
    run.write_variables(variables)
    run.write_summary({"model": "lenet5", "epochs": 2})
    assert run.read_history() == HISTORY
    with open(run.path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["train_loss"]) for r in rows] == [1.5, 0.5]
    assert (run.path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run.read_summary() == {"model": "lenet5", "epochs": 2}
    for a, b in zip(jax.tree.leaves(run.read_variables(model)), jax.tree.leaves(variables)):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in run.path.iterdir()) == [
        "curves.png", "history.csv", "history.json", "run.json", "variables.msgpack"]
    assert run.missing("run.json", "variables.msgpack", "x") == ["x"]
    assert run.checkpoints == (tmp_path / "new" / "run" / "checkpoints").absolute()


def test_a_rewrite_replaces_the_file_whole(tmp_path):
    run = runs.RunDir(tmp_path)
    run.write_summary({"epochs": 6, "note": "x" * 10_000})
    run.write_summary({"epochs": 3})
    assert json.loads((tmp_path / "run.json").read_text()) == {"epochs": 3}


def test_variables_of_other_shapes_are_refused_naming_the_differences(tmp_path):
    run = runs.RunDir(tmp_path)
    run.write_variables(_variables(models.create("lenet5", num_classes=3)))
    with pytest.raises(ValueError, match=r"do not fit LeNet5 \(2 differences, e\.g\. "
                                         r"\['params'\]\['logits'\]\['bias'\]: file \(3,\), "
                                         r"model \(10,\)"):
        run.read_variables(models.create("lenet5", num_classes=10))


def test_missing_or_damaged_files_give_a_message(tmp_path):
    run = runs.RunDir(tmp_path)
    model = models.create("lenet5")
    with pytest.raises(ValueError, match="cannot read variables from .*variables.msgpack"):
        run.read_variables(model)
    (tmp_path / "variables.msgpack").write_bytes(b"\xc1 not msgpack")
    with pytest.raises(ValueError, match="is not a variables file written by jaxcnn"):
        run.read_variables(model)
    with pytest.raises(ValueError, match="cannot read run.json of the run in"):
        run.read_summary()
    with pytest.raises(ValueError, match="is not a finished run: run.json missing"):
        runs.load_run(tmp_path)


HOLD = """
import sys, time
from jaxcnn import runs
with runs.RunDir(sys.argv[1]).lock():
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(runs.RunInUse, match=rf"in use by another run \(pid {holder.pid} on "
                                                rf"host {socket.gethostname()} since"):
            with runs.RunDir(tmp_path).lock():
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "60"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with pytest.warns(RuntimeWarning, match=rf"taking over .* \(pid {holder.pid} on host"):
        with runs.RunDir(tmp_path).lock():
            owner = json.loads((tmp_path / ".lock.owner").read_text())
            assert owner["pid"] == os.getpid()
            with runs.RunDir(tmp_path).lock():  # taken again by the same process: no-op
                pass
            assert (tmp_path / ".lock.owner").is_file()
    assert not (tmp_path / ".lock.owner").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # released cleanly: no take-over next time
        with runs.RunDir(tmp_path).lock():
            pass


def test_a_bad_workdir_is_refused_naming_the_path(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"workdir '.*file' is a file, not a directory"):
        runs.RunDir(tmp_path / "file").prepare()
    with pytest.raises(ValueError, match=r"cannot write to '.*file/run' \(Not a directory\)"):
        runs.RunDir(tmp_path / "file" / "run").prepare()
    with pytest.raises(ValueError, match=r"only [\d,.]+ MiB are free on the disk of .* needs "
                                         r"about [\d,.]+ MiB"):
        runs.RunDir(tmp_path).check_free_space(2**70)
    runs.RunDir(tmp_path).check_free_space(1)
    with pytest.raises(ValueError, match=r"cannot write to '/proc/jaxcnn-run' \("):
        runs.RunDir("/proc/jaxcnn-run").prepare()  # refused even to root
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints").write_text("a file where the checkpoints go")
    with pytest.raises(ValueError, match=r"cannot write to '.*run/checkpoints' \("):
        runs.RunDir(tmp_path / "run").prepare()  # the workdir is writable, its checkpoints not


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission")
def test_an_unwritable_workdir_or_checkpoint_folder_is_refused(tmp_path):
    for locked in (tmp_path / "a", tmp_path / "b" / "checkpoints"):
        locked.mkdir(parents=True)
        locked.chmod(0o500)
        with pytest.raises(ValueError, match=rf"cannot write to '{locked}' \(Permission denied\)"):
            runs.RunDir(tmp_path / locked.relative_to(tmp_path).parts[0]).prepare()


def test_a_finished_run_is_rebuilt_with_the_fields_it_was_trained_with(tmp_path):
    """A model started from weights applies their preprocessing; its reloaded run must too
    (without reading the weights file again)."""
    trained = models.create("vgg11", widths=(4, 8, 8, 8, 8), fc_width=16, preprocessing="caffe",
                            num_classes=8, input_shape=(32, 32, 3))
    fields = models.architecture_fields("vgg11", trained)
    assert fields == {"fc_width": 16, "preprocessing": "caffe", "widths": [4, 8, 8, 8, 8]}
    run = runs.RunDir(tmp_path)
    run.write_summary({"model": "vgg11", "dataset": "shapes", "model_fields": fields,
                       "weights": "gone.h5"})
    run.write_variables(trained.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32)))
    loaded = runs.load_run(tmp_path)  # at VGG's default input size, as `jaxcnn train` trains
    assert loaded.model.clone(input_shape=(32, 32, 3)) == trained and hash(loaded.model)
    resnet = models.create("resnet50", stride_in_1x1=True, preprocessing="torch")
    assert models.architecture_fields("resnet50", resnet) == {"preprocessing": "torch",
                                                              "stride_in_1x1": True}
