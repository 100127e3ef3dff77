"""jaxcnn.data.from_folder: the Kaggle cats-vs-dogs layout, decoded, resized and cached."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxcnn import data


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _folder(root, size=(12, 10), per_class=4):
    """cats are red, dogs blue; one grayscale dog; returns the arrays written per class."""
    rng = np.random.default_rng(0)
    written = {"cats": [], "dogs": []}
    for i in range(per_class):
        cat = np.zeros((*size, 3), np.uint8)
        cat[..., 0] = rng.integers(150, 256, size)
        dog = np.zeros((*size, 3), np.uint8)
        dog[..., 2] = rng.integers(150, 256, size)
        _write(root / "cats" / f"cat.{i}.png", cat)
        _write(root / "dogs" / f"dog.{i}.png", dog)
        written["cats"].append(cat)
        written["dogs"].append(dog)
    _write(root / "dogs" / "dog.gray.png", np.full(size, 77, np.uint8))
    return written


def test_folder_classes_labels_and_exact_pixels(tmp_path):
    written = _folder(tmp_path / "pets")
    ds = data.from_folder(tmp_path / "pets")
    assert ds.class_names == ("cats", "dogs") and ds.num_classes == 2 and ds.name == "pets"
    assert len(ds) == 9 and ds.image_shape == (12, 10, 3) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [0] * 4 + [1] * 5
    np.testing.assert_array_equal(ds.images[0], written["cats"][0])  # the file's exact pixels
    np.testing.assert_array_equal(ds.images[8], 77)  # grayscale file -> RGB
    assert ds.images[ds.labels == 0][..., 0].min() > 128 and ds.images[:4, ..., 2].max() == 0


def test_resize_grayscale_and_a_deterministic_held_out_split(tmp_path):
    _folder(tmp_path / "pets", size=(20, 16))
    ds = data.from_folder(tmp_path / "pets", image_size=8, channels=1)
    assert ds.image_shape == (8, 8, 1)
    np.testing.assert_array_equal(ds.images[8], 77)
    train, held_out = data.split(ds, 0.25, seed=0)
    assert (len(train), len(held_out)) == (7, 2) and sorted(held_out.labels) == [0, 1]
    np.testing.assert_array_equal(held_out.images, data.split(ds, 0.25, seed=0)[1].images)


def test_cache_is_reused_and_refreshed_when_the_folder_changes(tmp_path):
    _folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    first = data.from_folder(tmp_path / "pets", cache_dir=cache)
    files = list(cache.glob("pets-*.npz"))
    assert len(files) == 1
    assert np.array_equal(data.from_folder(tmp_path / "pets", cache_dir=cache).images, first.images)
    _write(tmp_path / "pets" / "cats" / "cat.new.png", np.zeros((12, 10, 3), np.uint8))
    assert len(data.from_folder(tmp_path / "pets", cache_dir=cache)) == 10
    assert len(list(cache.glob("pets-*.npz"))) == 2


def test_corrupt_files_are_skipped_with_a_warning_that_names_them(tmp_path):
    _folder(tmp_path / "pets")
    (tmp_path / "pets" / "dogs" / "dog.broken.jpg").write_bytes(b"not an image at all")
    (tmp_path / "pets" / "cats" / "cat.truncated.png").write_bytes(
        (tmp_path / "pets" / "cats" / "cat.0.png").read_bytes()[:40])
    for _ in range(2):  # decoded, then from the cache: the warning is given both times
        with pytest.warns(UserWarning, match=r"skipped 2 .*cat.truncated.png.*dog.broken.jpg"):
            ds = data.from_folder(tmp_path / "pets")
        assert len(ds) == 9 and ds.labels.tolist() == [0] * 4 + [1] * 5


def test_bad_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        data.from_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="has no class sub-folders"):
        data.from_folder(tmp_path / "flat")
    _folder(tmp_path / "mixed")
    _write(tmp_path / "mixed" / "dogs" / "dog.big.png", np.zeros((30, 20, 3), np.uint8))
    with pytest.raises(ValueError, match=r"mixed sizes: .*dog.big.png is 30x20 but .* is 12x10.*image_size"):
        data.from_folder(tmp_path / "mixed", cache=False)
    assert data.from_folder(tmp_path / "mixed", image_size=(6, 5)).image_shape == (6, 5, 3)
    with pytest.raises(ValueError, match="channels must be 1 .* got 4"):
        data.from_folder(tmp_path / "mixed", channels=4)
    (tmp_path / "junk" / "a").mkdir(parents=True)
    (tmp_path / "junk" / "a" / "x.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"no readable image .*1 files, 1 unreadable"):
        data.from_folder(tmp_path / "junk")


def _png_claiming(width, height):
    """A PNG header that claims width x height pixels (the data never follow)."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_skipped_and_named(tmp_path):
    _folder(tmp_path / "pets")
    (tmp_path / "pets" / "cats" / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    with pytest.warns(UserWarning, match=r"skipped 1 .*cats/bomb.png \(decompression bomb"):
        ds = data.from_folder(tmp_path / "pets", cache=False)
    assert len(ds) == 9


def test_the_cache_lives_outside_the_data_keyed_by_path(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    for name in ("a", "b"):
        _folder(tmp_path / name / "pets")
    before = {p for p in (tmp_path / "a").rglob("*")}
    first = data.from_folder(tmp_path / "a" / "pets")
    assert {p for p in (tmp_path / "a").rglob("*")} == before  # nothing written into the data
    assert len(list((tmp_path / "cache" / "folders").glob("pets-*.npz"))) == 1
    data.from_folder(tmp_path / "b" / "pets")  # same name and files, another folder
    assert len(list((tmp_path / "cache" / "folders").glob("pets-*.npz"))) == 2
    assert np.array_equal(data.from_folder(tmp_path / "a" / "pets").images, first.images)


def test_symlinks_out_of_the_folder_are_not_followed_unless_asked(tmp_path):
    _folder(tmp_path / "pets")
    _write(tmp_path / "secret" / "outside.png", np.zeros((12, 10, 3), np.uint8))
    (tmp_path / "pets" / "cats" / "link.png").symlink_to(tmp_path / "secret" / "outside.png")
    (tmp_path / "pets" / "dogs" / "inside.png").symlink_to(tmp_path / "pets" / "cats" / "cat.0.png")
    with pytest.warns(UserWarning, match=r"did not follow 1 symbolic link.*cats/link.png.*"
                                         "follow_symlinks=True"):
        assert len(data.from_folder(tmp_path / "pets", cache=False)) == 10
    assert len(data.from_folder(tmp_path / "pets", cache=False, follow_symlinks=True)) == 11
