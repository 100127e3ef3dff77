"""Checkpoints: SIGKILL/SIGTERM then resume gives the uninterrupted result bit for bit;
corrupt, foreign and missing checkpoints; a NaN loss never reaches a checkpoint."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import jax
import numpy as np
import pytest

from jaxcnn import data, train
from jaxcnn.train.checkpoint import fingerprint

ROOT = pathlib.Path(__file__).resolve().parents[1]

SETUP = '''
import flax.linen as nn, numpy as np
from jaxcnn import data, layers, train

class TinyNet(nn.Module):
    """BatchNorm and dropout, so statistics and per-step dropout keys must resume too."""
    num_classes: int = 4
    input_shape: tuple = (6, 6, 1)
    width: int = 8

    @nn.compact
    def __call__(self, x, train=False, capture_activations=False):
        x = layers.Conv2D(4, 3, use_bias=False)(x)
        x = layers.BatchNorm()(x, use_running_average=not train)
        x = layers.Dense(self.width)(layers.Flatten()(layers.Activation("relu")(x)))
        x = layers.Dropout(0.3)(x, deterministic=not train)
        return layers.Dense(self.num_classes)(x)

def dataset(n=512, nan_at=None):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    images = rng.uniform(size=(n, 6, 6, 1)).astype(np.float32)
    images[np.arange(n), labels, labels, 0] += 2.0
    dataset = data.from_arrays(images / 3, labels, num_classes=4)
    if nan_at is not None:  # from_arrays refuses NaN; the loop's own check is under test
        dataset.images[nan_at] = np.nan
    return dataset

OPTIONS = dict(batch_size=8, optimizer="adam", learning_rate=3e-3, schedule="cosine",
               seed=3, progress=False)
'''
exec(SETUP)

WORKER = SETUP + '''
import sys
try:
    train.fit(TinyNet(), dataset(), epochs=int(sys.argv[2]), workdir=sys.argv[1],
              checkpoint_every=20, **OPTIONS)
except train.Preempted as stop:
    print(f"PREEMPTED {stop.step} {stop}", flush=True)
'''
EPOCHS = 4  # 64 steps each: long enough to be interrupted in the middle


def _steps(workdir):
    folder = pathlib.Path(workdir) / "checkpoints"
    if not folder.exists():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def _interrupt(workdir, sig):
    """Starts the worker, sends `sig` once step 40 is saved; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(workdir), str(EPOCHS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not any(step >= 40 for step in _steps(workdir)):
        assert proc.poll() is None, "the worker ended before it could be interrupted"
        time.sleep(0.005)
    proc.send_signal(sig)
    proc.stdout_text, proc.stderr_text = proc.communicate(timeout=120)
    return proc


@pytest.fixture(scope="module")
def uninterrupted():
    return train.fit(TinyNet(), dataset(), epochs=EPOCHS, **OPTIONS)


def _assert_identical(state, history, reference):
    ref_state, ref_history = reference
    for a, b in zip(jax.tree.leaves(state.variables()), jax.tree.leaves(ref_state.variables())):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "input_wait")}
                       for r in h]
    assert strip(history) == strip(ref_history)


@pytest.mark.slow
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, uninterrupted):
    proc = _interrupt(tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    saved = _steps(tmp_path)
    assert saved and max(saved) < EPOCHS * 64, saved
    state, history = train.fit(TinyNet(), dataset(), epochs=EPOCHS, workdir=tmp_path,
                               resume=True, checkpoint_every=20, **OPTIONS)
    _assert_identical(state, history, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_ctrl_c_saves_exits_cleanly_and_resumes(tmp_path, uninterrupted, sig):
    proc = _interrupt(tmp_path, sig)
    assert proc.returncode == 0, proc.stderr_text[-2000:]
    assert "Traceback" not in proc.stderr_text
    stopped = int(proc.stdout_text.split("PREEMPTED ")[1].split()[0])
    assert f"stopped by {sig.name} at step {stopped};" in proc.stdout_text
    assert 40 <= stopped < EPOCHS * 64 and max(_steps(tmp_path)) == stopped
    state, history = train.fit(TinyNet(), dataset(), epochs=EPOCHS, workdir=tmp_path,
                               resume=True, checkpoint_every=20, **OPTIONS)
    _assert_identical(state, history, uninterrupted)


def _corrupt(step_dir):
    for path in (step_dir / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0garbage")


def _remove_state(step_dir):
    for path in sorted((step_dir / "state").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()


def _flip_bits(step_dir):
    """Inverts 64 bytes in the middle of the largest array-data file: no error on reading."""
    data_files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    largest = max(data_files, key=lambda p: p.stat().st_size)
    content = bytearray(largest.read_bytes())
    middle = len(content) // 2
    content[middle:middle + 64] = bytes(b ^ 0xFF for b in content[middle:middle + 64])
    largest.write_bytes(bytes(content))


def _other_checksum(step_dir):
    """Arrays that read back fine but are not the ones saved: only the checksum tells."""
    meta = step_dir / "meta" / "metadata"
    record = json.loads(meta.read_text())
    record["checksum"] = "0" * 64
    meta.write_text(json.dumps(record))


# A flipped bit in the array data is caught by TensorStore when it lands in a structure it
# checks, otherwise by the checksum: either way the step is refused.
@pytest.mark.parametrize("damage, why", [(_corrupt, "Error"), (_remove_state, "Error"),
                                         (_flip_bits, ""),
                                         (_other_checksum, "do not match the checksum")],
                         ids=["corrupt", "partial", "bitflip", "checksum"])
def test_a_damaged_latest_checkpoint_is_reported_and_the_previous_used(tmp_path, damage, why,
                                                                      capfd):
    small, options = dataset(64), {**OPTIONS, "schedule": "constant"}  # same lr at any length
    train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, checkpoint_every=3, **options)
    assert _steps(tmp_path) == [3, 6, 8]
    damage(tmp_path / "checkpoints" / "8")
    capfd.readouterr()
    with pytest.warns(RuntimeWarning, match=f"checkpoint step 8 .* corrupt or incomplete .*{why}"
                      ) as caught:
        state, history = train.fit(TinyNet(), small, epochs=2, workdir=tmp_path, resume=True,
                                   extend=True, checkpoint_every=3, **options)
    assert len([w for w in caught if "checkpoint step" in str(w.message)]) == 1
    assert "Traceback" not in "".join(capfd.readouterr())
    reference = train.fit(TinyNet(), small, epochs=2, **options)
    _assert_identical(state, history[1:], (reference[0], reference[1][1:]))


def test_no_intact_checkpoint_stops_the_run_with_a_message(tmp_path):
    small = dataset(32)
    train.fit(TinyNet(), small, epochs=2, workdir=tmp_path, checkpoint_every=3, **OPTIONS)
    for step in _steps(tmp_path):
        _flip_bits(tmp_path / "checkpoints" / str(step))
    with pytest.warns(RuntimeWarning), pytest.raises(
            ValueError, match=r"none of the checkpoints \[4, 6, 8\] in .* is intact; pass "
                              r"overwrite=True"):
        train.fit(TinyNet(), small, epochs=2, workdir=tmp_path, checkpoint_every=3, **OPTIONS)


def test_foreign_and_missing_checkpoints_are_refused(tmp_path):
    small = dataset(32)
    with pytest.raises(ValueError, match="resume=True but .*checkpoints holds no checkpoint"):
        train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, resume=True, **OPTIONS)
    train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, **OPTIONS)
    for resume in (True, False):
        with pytest.raises(ValueError, match="holds a checkpoint of 'TinyNet' with other "
                                             "parameter shapes.*another workdir"):
            train.fit(TinyNet(width=5), small, epochs=1, workdir=tmp_path, resume=resume,
                      **OPTIONS)
    with pytest.raises(ValueError, match=r"holds a run with other settings \(batch_size: 8 in "
                                         r"the run, 4 now\)\. To continue that run, use its "
                                         r"settings; or pass overwrite=True"):
        train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, **{**OPTIONS, "batch_size": 4})


def _files(workdir):
    """Every file under `workdir` with its bytes."""
    return {p.relative_to(workdir): p.read_bytes() for p in pathlib.Path(workdir).rglob("*")
            if p.is_file()}


def test_rerunning_a_finished_run_continues_it_and_changes_nothing(tmp_path):
    small = dataset(32)
    first = train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, **OPTIONS)
    before = _files(tmp_path)
    again = train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, **OPTIONS)
    _assert_identical(*again, first)
    after = _files(tmp_path)
    assert after.keys() == before.keys() and _steps(tmp_path) == [4]
    assert after[pathlib.Path("variables.msgpack")] == before[pathlib.Path("variables.msgpack")]


def test_a_run_with_other_settings_is_refused_and_the_old_run_kept(tmp_path):
    small = dataset(32)
    train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, **OPTIONS)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=r"other settings \(learning_rate: 0.003 in the run, "
                                         r"0.1 now\).*overwrite=True \(--overwrite\).*another "
                                         r"workdir"):
        train.fit(TinyNet(), small, epochs=1, workdir=tmp_path,
                  **{**OPTIONS, "learning_rate": 0.1})
    with pytest.raises(ValueError, match="epochs: 1 in the run, 3 now.*pass extend=True "
                                         r"\(--extend\): the cosine schedule is then laid over "
                                         r"3 epochs instead of 1, so at step 4 the learning rate "
                                         r"becomes 0.00225 where the finished run had 0"):
        train.fit(TinyNet(), small, epochs=3, workdir=tmp_path, **OPTIONS)
    assert _files(tmp_path) == before


def test_extend_trains_a_finished_run_on(tmp_path):
    small, options = dataset(32), {**OPTIONS, "schedule": "constant"}
    train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, **options)
    state, history = train.fit(TinyNet(), small, epochs=3, workdir=tmp_path, extend=True,
                               **options)
    _assert_identical(state, history, train.fit(TinyNet(), small, epochs=3, **options))
    assert _steps(tmp_path) == [4, 8, 12]
    with pytest.raises(ValueError, match="epochs: 3 in the run, 2 now"):
        train.fit(TinyNet(), small, epochs=2, workdir=tmp_path, extend=True, **options)


def test_overwrite_deletes_the_run_and_starts_afresh(tmp_path):
    small = dataset(32)
    train.fit(TinyNet(), small, epochs=2, workdir=tmp_path, **OPTIONS)
    (tmp_path / "viz").mkdir()
    (tmp_path / "viz" / "mine.png").write_bytes(b"made by the user")
    other = {**OPTIONS, "learning_rate": 0.1}
    state, history = train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, overwrite=True,
                               **other)
    _assert_identical(state, history, train.fit(TinyNet(), small, epochs=1, **other))
    assert _steps(tmp_path) == [4] and len(json.loads((tmp_path / "history.json").read_text())) == 1
    assert (tmp_path / "viz" / "mine.png").read_bytes() == b"made by the user"
    with pytest.raises(ValueError, match="pass one of them"):
        train.fit(TinyNet(), small, epochs=1, workdir=tmp_path, overwrite=True, resume=True,
                  **other)


def test_run_files_without_checkpoints_are_not_overwritten(tmp_path):
    (tmp_path / "variables.msgpack").write_bytes(b"weights of an earlier run")
    with pytest.raises(ValueError, match=r"holds the files of a run \(variables.msgpack\) but "
                                         "no checkpoint to continue from; pass overwrite=True"):
        train.fit(TinyNet(), dataset(32), epochs=1, workdir=tmp_path, **OPTIONS)
    assert (tmp_path / "variables.msgpack").read_bytes() == b"weights of an earlier run"


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    order = np.random.default_rng([OPTIONS["seed"], 1]).permutation(64)
    bad_step = 7  # the NaN example sits in the 7th batch of epoch 1
    nan_data = dataset(64, nan_at=int(order[(bad_step - 1) * 8]))
    with pytest.raises(FloatingPointError, match=f"became nan at step {bad_step} "):
        train.fit(TinyNet(), nan_data, epochs=1, workdir=tmp_path, checkpoint_every=3, **OPTIONS)
    assert _steps(tmp_path) == [3, 6]
    checkpoints = train.Checkpoints(tmp_path / "checkpoints", keep=3)
    tx = train.make_optimizer("adam", train.make_schedule("cosine", 3e-3, 8))
    like = train.create_state(TinyNet(), tx, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the kept checkpoints read back without complaint
        restored, meta = checkpoints.restore_latest(like, fingerprint("TinyNet", like))
    checkpoints.close()
    assert int(restored.step) == 6 and meta["epoch_sums"]["steps"] == 6
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored.params))
