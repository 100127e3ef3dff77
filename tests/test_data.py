"""jaxcnn.data: the embedded digits, the user's own arrays, and batching."""
import numpy as np
import pytest

from jaxcnn import data


def test_digits_splits_are_fixed_disjoint_and_complete():
    train, test = data.digits("train"), data.digits("test")
    assert (len(train), len(test)) == (1438, 359)
    assert len(data.digits("all")) == 1797
    assert train.image_shape == (8, 8, 1) and train.num_classes == 10
    assert set(np.unique(test.labels)) == set(range(10))
    for split in (train, test):
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int32
        assert split.images.min() == 0.0 and split.images.max() == 1.0
    # every image of "all" lands in exactly one split
    keys = lambda d: {img.tobytes() + bytes([lab]) for img, lab in zip(d.images, d.labels)}
    assert keys(train) | keys(test) == keys(data.digits("all"))
    np.testing.assert_array_equal(train.labels, data.digits("train").labels)


def test_digits_resize_to_lenet_input():
    train = data.load("digits", "train", image_size=32)
    assert train.images.shape == (1438, 32, 32, 1)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0 + 1e-6


def test_unknown_dataset_and_split_are_refused():
    with pytest.raises(ValueError, match="unknown dataset 'mnits'.*digits"):
        data.load("mnits")
    with pytest.raises(ValueError, match="split must be one of"):
        data.digits("validation")


def test_from_arrays_keeps_uint8_and_adds_channel_axis():
    images = np.full((3, 4, 5), 255, np.uint8)
    ds = data.from_arrays(images, [0, 1, 1])
    assert ds.images.shape == (3, 4, 5, 1) and ds.num_classes == 2
    assert ds.images.dtype == np.uint8 and ds.images.nbytes == 3 * 4 * 5
    assert data.unit_float(ds.images).max() == 1.0
    resized = data.from_arrays(images, [0, 1, 1], image_size=8)
    assert resized.images.dtype == np.float32 and resized.images.max() == 1.0


def test_array_dataset_refuses_other_dtypes():
    with pytest.raises(ValueError, match="uint8 .* or float32 in \\[0, 1\\], got dtype int64"):
        data.ArrayDataset(np.zeros((2, 4, 4, 1), np.int64), np.zeros(2, np.int32), 2)


@pytest.mark.parametrize("images,labels,kwargs,match", [
    (np.zeros((3, 4, 4, 1)), [0, 1, 5], {"num_classes": 3}, r"labels must lie in \[0, num_classes=3\), got 5"),
    (np.zeros((3, 4, 4, 1)), [0, -1, 1], {}, r"got -1 at index 1"),
    (np.zeros((3, 4, 4, 1)), [0, 1], {}, "one label per image"),
    (np.zeros((4, 4)), [0, 1, 1, 0], {}, r"\(N, H, W\) or \(N, H, W, C\)"),
    (np.zeros((2, 4, 4, 1)), [0.5, 1.0], {}, "integer class indices"),
    (np.zeros((2, 4, 4, 1), np.int64), [0, 1], {}, "uint8 or float"),
    (np.full((2, 4, 4, 1), 200.0), [0, 1], {}, r"\[200, 200\]; they look like 0-255 pixel values"),
    (np.full((2, 4, 4, 1), -0.5), [0, 1], {}, r"must lie in \[0, 1\], got values in \[-0.5"),
    (np.full((2, 4, 4, 1), np.nan), [0, 1], {}, "NaN or Inf"),
    (np.zeros((2, 4, 4, 1)), np.array([0, 2**32]), {}, "labels must fit int32"),
    (np.zeros((2, 4, 4, 1)), ["cat", "dog"], {}, "np.unique"),
    (np.zeros((32, 32, 3)), [0], {}, r"look like one \(H, W, C\) image; pass images\[None\]"),
    (np.zeros((2, 3, 32, 32)), [0, 1], {}, r"channels-first \(NCHW\).*transpose\(0, 2, 3, 1\)"),
    (np.zeros((2, 4, 4, 1)), [0, 1], {"num_classes": 0}, "num_classes must be a positive int"),
])
def test_from_arrays_refuses_bad_input(images, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.from_arrays(images, labels, **kwargs)


def _dataset(n=10):
    return data.ArrayDataset(np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1),  # ids as pixels
                             (np.arange(n) % 3).astype(np.int32), 3)


def test_eval_batches_count_every_example_once():
    ds = _dataset(10)
    batches = list(ds.batches(4))
    assert [b["image"].shape[0] for b in batches] == [4, 4, 4]
    seen = np.concatenate([b["image"][b["mask"]].ravel() for b in batches])
    np.testing.assert_array_equal(seen, np.arange(10))
    assert batches[-1]["mask"].tolist() == [True, True, False, False]


def test_train_batches_shuffle_per_epoch_and_repeat_per_seed():
    ds = _dataset(12)
    order = lambda seed, epoch: np.concatenate(
        [b["image"].ravel() for b in ds.batches(4, shuffle=True, seed=seed, epoch=epoch,
                                                drop_remainder=True)])
    assert not np.array_equal(order(0, 1), order(0, 2))
    np.testing.assert_array_equal(order(0, 1), order(0, 1))
    assert sorted(order(0, 1)) == list(range(12))
    assert len(list(ds.batches(5, drop_remainder=True))) == 2


def test_split_is_stratified_and_deterministic():
    ds = _dataset(30)
    train, test = data.split(ds, 0.2, seed=1)
    assert (len(train), len(test)) == (24, 6)
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(test.images, data.split(ds, 0.2, seed=1)[1].images)


def test_convert_channels_uses_luma_and_repeats_gray():
    rgb = np.random.default_rng(0).uniform(size=(2, 3, 3, 3)).astype(np.float32)
    gray = data.convert_channels(rgb, 1)
    np.testing.assert_allclose(gray[..., 0], 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1]
                               + 0.114 * rgb[..., 2], rtol=1e-6)
    np.testing.assert_array_equal(data.convert_channels(gray, 3), np.repeat(gray, 3, axis=-1))
    with pytest.raises(ValueError, match="cannot convert images with 3 channels to 2"):
        data.convert_channels(rgb, 2)


def test_class_names_must_name_every_class():
    ds = data.from_arrays(np.zeros((2, 2, 2)), [0, 1], class_names=["cat", "dog"])
    assert ds.class_names == ("cat", "dog")
    with pytest.raises(ValueError, match="test_fraction=0.1 leaves the held-out part empty"):
        data.split(data.from_arrays(np.zeros((4, 2, 2)), np.arange(4) % 2), 0.1)
    assert data.split(data.from_arrays(np.zeros((10, 2, 2)), np.arange(10) % 2,
                                       class_names=["a", "b"]), 0.2)[0].class_names == ("a", "b")
    with pytest.raises(ValueError, match="class_names has 1 names but there are num_classes=2"):
        data.from_arrays(np.zeros((2, 2, 2)), [0, 1], class_names=["cat"])
