"""Image folders on a remote filesystem (gs://, a Cloud Storage emulator on 127.0.0.1) read
as the same folder on the local disk is: streamed (also by worker processes), decoded into
memory with its cache, and split by `load("folder:gs://...")`."""
import numpy as np
import pytest
from etils import epath
from PIL import Image

from jaxcnn import data, paths
from gcs import emulated_bucket, upload

pytest.importorskip("gcp_storage_emulator.server")
pytest.importorskip("gcsfs")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(local folder, the same folder on gs://): 2 classes, a nested sub-folder, a hidden
    file, JPEG and PNG of varied sizes."""
    root = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        for i in range(5):
            folder = root / name / ("nested" if i == 4 else "")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (int(rng.integers(20, 40)), 30, 3), dtype=np.uint8)
            pixels[..., c] = 255
            fmt = "PNG" if i % 2 else "JPEG"
            Image.fromarray(pixels).save(folder / f"{i}.{fmt.lower()}", format=fmt)
    (root / "cats" / ".DS_Store").write_bytes(b"not an image")
    with emulated_bucket() as bucket:
        upload(root, f"{bucket}/pets")
        yield root, f"{bucket}/pets"


def _same_batches(a, b, **kwargs):
    for x, y in zip(a.batches(4, **kwargs), b.batches(4, **kwargs), strict=True):
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(x[key], y[key])


def test_a_remote_folder_streams_the_batches_of_the_local_one(folders):
    local, remote = folders
    mine = data.stream_folder(local, 16, workers=0)
    theirs = data.stream_folder(remote, 16, workers=0)
    assert theirs.class_names == ("cats", "dogs") and len(theirs) == len(mine) == 10
    assert [f.removeprefix(remote) for f in theirs.files] == \
        [f.removeprefix(str(local)) for f in mine.files]
    assert theirs.files[4] == f"{remote}/cats/nested/4.jpeg"
    _same_batches(mine, theirs, shuffle=True, seed=1, epoch=2, drop_remainder=True)


@pytest.mark.slow
def test_worker_processes_read_a_remote_folder(folders):
    local, remote = folders
    streamed = data.stream_folder(remote, 16, workers=1)
    try:
        _same_batches(data.stream_folder(local, 16, workers=0), streamed, shuffle=True, seed=1,
                      epoch=0, drop_remainder=True)
    finally:
        streamed.close()


def test_a_remote_folder_decodes_into_memory_with_a_cache_that_follows_changes(folders, tmp_path):
    local, remote = folders
    cache = tmp_path / "cache"
    theirs = data.from_folder(remote, image_size=12, cache_dir=cache)
    # the cache itself may be remote too (one every host of a pod reads)
    shared = data.from_folder(local, image_size=12, cache_dir=f"{remote}-cache")
    assert [p.suffix for p in epath.Path(f"{remote}-cache").iterdir()] == [".npz"]
    np.testing.assert_array_equal(data.from_folder(local, image_size=12,
                                                   cache_dir=f"{remote}-cache").images,
                                  shared.images)
    mine = data.from_folder(local, image_size=12, cache=False)
    np.testing.assert_array_equal(theirs.images, mine.images)
    assert theirs.labels.tolist() == mine.labels.tolist() and theirs.name == "pets"
    np.testing.assert_array_equal(data.from_folder(remote, image_size=12, cache_dir=cache).images,
                                  mine.images)
    assert len(list(cache.glob("pets-*.npz"))) == 1  # read from the cache
    changed = epath.Path(remote) / "dogs" / "0.jpeg"
    original = changed.read_bytes()
    try:
        changed.write_bytes((local / "cats" / "0.jpeg").read_bytes())  # another object
        again = data.from_folder(remote, image_size=12, cache_dir=cache)
        assert len(list(cache.glob("pets-*.npz"))) == 2
        np.testing.assert_array_equal(again.images[5], mine.images[0])
    finally:
        changed.write_bytes(original)


def test_load_splits_a_remote_folder_as_a_local_one(folders):
    local, remote = folders
    for split in ("train", "test"):
        theirs = data.load(f"folder:{remote}", split, image_size=16,
                           folder_options={"val_fraction": 0.4, "workers": 0})
        mine = data.load(f"folder:{local}", split, image_size=16,
                         folder_options={"val_fraction": 0.4, "workers": 0})
        assert theirs.labels == mine.labels and theirs.training == (split == "train")
        _same_batches(mine, theirs)


def test_a_missing_remote_folder_is_named():
    with emulated_bucket() as bucket:
        with pytest.raises(ValueError, match=f"directory '{bucket}/none' is not a folder"):
            data.stream_folder(f"{bucket}/none", 16)


def test_a_remote_path_without_its_filesystem_package_is_named():
    with pytest.raises(ValueError, match=r"'s3://bucket/cats' is on s3:// but its filesystem "
                                         r"package is not installed: pip install s3fs"):
        data.stream_folder("s3://bucket/cats", 16)
    assert paths.is_remote("gs://b/x") and not paths.is_remote("/tmp/gs:/x")
