"""A run directory on Cloud Storage (gs://), against a GCS emulator on 127.0.0.1."""
import jax
import numpy as np
import pytest
from etils import epath

import jaxcnn
from jaxcnn import data, models, runs
from jaxcnn.cli import main
from gcs import emulated_bucket

emulator = pytest.importorskip("gcp_storage_emulator.server")
pytest.importorskip("gcsfs")


@pytest.fixture(scope="module")
def bucket():
    """An in-memory GCS emulator with the bucket "bucket"; gcsfs and TensorStore use it."""
    with emulated_bucket() as name:
        yield name


@pytest.mark.slow
def test_fit_writes_and_continues_a_run_on_cloud_storage(bucket):
    digits = data.load("digits", "train", image_size=(32, 32))
    # The emulator now and then answers TensorStore's conditional writes with a generation
    # TensorStore cannot parse ("Malformed StorageGeneration"), more often on a loaded
    # machine; a run that meets it starts again in a fresh directory (3 tries). Real Cloud
    # Storage does not do this; any other error fails at once.
    for attempt in range(3):
        workdir = f"{bucket}/runs/lenet{attempt}"
        options = dict(epochs=2, batch_size=64, progress=False, workdir=workdir,
                       tensorboard=True)
        try:
            state, history = jaxcnn.fit(models.create("lenet5"), digits, **options)
            break
        except ValueError as err:
            if "Malformed StorageGeneration" not in str(err) or attempt == 2:
                raise
    run = runs.RunDir(workdir)
    assert run.read_history() == history and len(history) == 2
    names = {p.name for p in epath.Path(workdir).iterdir()}
    assert {"history.json", "history.csv", "curves.png", "checkpoints", "tensorboard"} <= names
    events = list((epath.Path(workdir) / "tensorboard").iterdir())
    assert len(events) == 1 and events[0].name.startswith("events.out.tfevents.")
    assert b"loss" in events[0].read_bytes() and b"input_wait" in events[0].read_bytes()
    assert not any(name.endswith(".tmp") for name in names)
    again, _ = jaxcnn.fit(models.create("lenet5"), digits, **options)  # finished: restored
    for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    run.write_summary({"model": "lenet5", "dataset": "digits"})  # as `jaxcnn train` does
    assert main(["visualize", "--workdir", workdir, "--what", "filters", "--layer", "conv2",
                 "--channels", "0", "--steps", "3", "--gif"]) == 0
    pictures = [epath.Path(workdir) / "viz" / name
                for name in ("filters_conv2.png", "weights.png", "filters_conv2.gif")]
    assert [p.read_bytes()[:4] for p in pictures] == [b"\x89PNG", b"\x89PNG", b"GIF8"]


def test_a_remote_path_without_its_filesystem_package_is_named():
    with pytest.raises(ValueError, match=r"'s3://bucket/run' is on s3:// but its filesystem "
                                         r"package is not installed: pip install s3fs"):
        runs.RunDir("s3://bucket/run")
