"""jaxcnn.data.load on TFDS catalog datasets, offline: `tfds.testing.mock_data` stands in
for the prepared files (the real ArrayRecord path is exercised by the embedded builders in
test_data_builders.py)."""
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import jaxcnn
from jaxcnn import data, models


@pytest.mark.parametrize("name,shape,classes", [
    ("mnist", (28, 28, 1), 10), ("fashion_mnist", (28, 28, 1), 10), ("kmnist", (28, 28, 1), 10),
    ("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100), ("svhn_cropped", (32, 32, 3), 10),
])
def test_catalog_datasets_load_with_their_shapes_and_classes(name, shape, classes, tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        ds = data.load(name, "train", data_dir=tmp_path)
    assert isinstance(ds, data.ArrayDataset) and len(ds) == 40
    assert ds.image_shape == shape and ds.num_classes == classes and ds.name == f"{name}:train"
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32  # kept 8-bit
    assert ds.images.max() > 128
    assert ((0 <= ds.labels) & (ds.labels < classes)).all()
    assert len(ds.class_names) == classes


def test_resizing_and_channel_conversion_for_lenet(tmp_path):
    with tfds.testing.mock_data(num_examples=16):
        gray = data.load("cifar10", "test", image_size=32, channels=1, data_dir=tmp_path)
        rgb = data.load("cifar10", "test", data_dir=tmp_path)
        big = data.load("mnist", "test", image_size=(40, 36), channels=3, data_dir=tmp_path)
    assert gray.image_shape == (32, 32, 1) and big.image_shape == (40, 36, 3)
    assert gray.images.dtype == rgb.images.dtype == big.images.dtype == np.uint8
    luma = rgb.images @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, rounded to 8 bits
    assert np.abs(gray.images[..., 0] - luma).max() <= 0.51  # OpenCV: fixed-point weights
    np.testing.assert_array_equal(big.images[..., 0], big.images[..., 2])


def test_images_of_varying_size_need_an_image_size(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        with pytest.raises(ValueError, match=r"'imagenette' has images of varying size.*image_size"):
            data.load("imagenette", "train", data_dir=tmp_path)
        ds = data.load("imagenette", "train", image_size=48, data_dir=tmp_path)
    assert ds.image_shape == (48, 48, 3) and ds.num_classes == 10


def test_streaming_reads_the_same_batches_as_memory(tmp_path):
    with tfds.testing.mock_data(num_examples=30):
        streamed = data.load("mnist", "train", image_size=16, data_dir=tmp_path, in_memory=False)
        assert isinstance(streamed, data.SourceDataset) and streamed.image_shape == (16, 16, 1)
        memory = streamed.to_arrays()
        kwargs = dict(shuffle=True, seed=3, epoch=2, drop_remainder=False)
        for a, b in zip(streamed.batches(8, **kwargs), memory.batches(8, **kwargs), strict=True):
            for key in ("image", "label", "mask"):
                np.testing.assert_array_equal(a[key], b[key])
    assert streamed.num_batches(8, drop_remainder=False) == 4


def test_a_short_fit_runs_on_mock_mnist(tmp_path):
    with tfds.testing.mock_data(num_examples=64):
        train = data.load("mnist", "train", image_size=32, data_dir=tmp_path)
        test = data.load("mnist", "test", image_size=32, data_dir=tmp_path, in_memory=False)
    _, history = jaxcnn.fit(models.create("lenet5"), train, test, epochs=2, batch_size=16,
                            progress=False)
    assert len(history) == 2 and np.isfinite(history[-1]["train_loss"])
    assert 0.0 <= history[-1]["eval_accuracy"] <= 1.0


def test_unknown_name_suggests_the_closest_catalog_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnits'.*did you mean mnist, kmnist"):
        data.load("mnits")
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar_10'.*cifar10"):
        data.load("cifar_10")


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError) as info:
        data.load("mnist", "train", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert f"tfds build mnist --data_dir={tmp_path} --file_format=array_record" in message
    assert str(tmp_path / "mnist" / "3.0.1") in message and "TensorFlow" in message
    assert "data_dir=" in message and not any(tmp_path.iterdir())


def test_bad_split_and_channels_are_refused(tmp_path):
    with pytest.raises(ValueError, match="channels must be 1 .* got 2"):
        data.load("mnist", channels=2, data_dir=tmp_path)
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_FILES):
        with pytest.raises(ValueError, match="split 'validation' of dataset 'mnist'"):
            data.load("mnist", "validation", data_dir=tmp_path)


def test_any_random_access_source_is_a_dataset_and_labels_are_checked():
    rng = np.random.default_rng(0)
    examples = [{"image": rng.integers(0, 256, (6, 5), np.uint8), "label": i % 3} for i in range(7)]
    ds = data.SourceDataset(examples, num_classes=3, image_shape=(4, 4, 1), name="mine")
    batches = list(ds.batches(4))
    assert [b["mask"].sum() for b in batches] == [4, 3] and batches[1]["image"][3].max() == 0
    assert batches[0]["label"].tolist() == [0, 1, 2, 0]
    examples[5]["label"] = 3  # a dataset reads ahead, so a changed source is a new dataset
    ds = data.SourceDataset(examples, num_classes=3, image_shape=(4, 4, 1), name="mine")
    with pytest.raises(ValueError, match=r"'mine' has label 3 at example 5, outside \[0, num_classes=3\)"):
        list(ds.batches(4))


def test_fit_image_resizes_like_jax_image_resize():
    from jaxcnn.data.catalog import fit_image
    yy, xx = np.mgrid[0:28, 0:28]
    smooth = (127 + 120 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.uint8)
    for shape in ((14, 14, 1), (32, 40, 3)):
        ours = fit_image(smooth, shape)
        reference = data.resize_images(smooth[None, ..., None] / np.float32(255), shape[:2])[0]
        assert ours.shape == shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours[2:-2, 2:-2], np.repeat(reference, shape[2], -1)[2:-2, 2:-2],
                                   atol=0.03)


def test_a_missing_dataset_fails_fast_without_network(tmp_path, monkeypatch):
    from jaxcnn.data import catalog

    monkeypatch.setenv("JAXCNN_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(data.DatasetNotPreparedError, match=r"(?s)'mnist' is not prepared .*"
                                                          r"\(JAXCNN_OFFLINE is set\).*tfds build"):
        data.load("mnist", "train", data_dir=tmp_path)
    monkeypatch.delenv("JAXCNN_OFFLINE")
    if catalog.network_unreachable() is None:
        pytest.skip("this machine is online: TFDS would download mnist")
    with pytest.raises(data.DatasetNotPreparedError, match=r"\(no network: cannot reach "):
        data.load("mnist", "train", data_dir=tmp_path)
    assert time.perf_counter() - start < 10


def test_train_offline_refuses_a_missing_catalog_dataset(tmp_path, capsys):
    from jaxcnn import cli

    assert cli.main(["train", "--dataset", "mnist", "--offline",
                     "--workdir", str(tmp_path / "run")]) == 2
    assert "'mnist' is not prepared" in capsys.readouterr().err


class JpegFiles(tfds.core.GeneratorBasedBuilder):
    """A real TFDS dataset (ArrayRecord files, built without TensorFlow) of JPEG and PNG
    files of varied sizes, stored encoded as catalog datasets such as imagenette are."""

    VERSION = tfds.core.Version("1.0.0")
    FOLDER = None  # set by the test: class sub-folders of image files

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["a", "b"])}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, path in enumerate(sorted(self.FOLDER.rglob("*.*"))):
            yield i, {"image": path, "label": path.parent.name}


def test_encoded_images_decode_and_resize_as_a_streamed_folder_does(tmp_path):
    rng = np.random.default_rng(0)
    for c, name in enumerate("ab"):
        (tmp_path / "files" / name).mkdir(parents=True)
        for i, fmt in enumerate(("JPEG", "PNG", "JPEG")):
            pixels = rng.integers(0, 256, (int(rng.integers(20, 60)), 45, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "files" / name / f"{i}.{fmt.lower()}", fmt)
    JpegFiles.FOLDER = tmp_path / "files"
    JpegFiles(data_dir=tmp_path / "tfds", file_format="array_record").download_and_prepare()
    folder = data.stream_folder(tmp_path / "files", (16, 24), training=False, workers=0,
                                crop_fraction=None)

    def examples(dataset):  # (label, image bytes), sorted: TFDS stores examples shuffled
        batch = next(dataset.batches(6))
        assert batch["image"].dtype == np.uint8 and batch["mask"].all()
        return sorted(zip(batch["label"].tolist(), (im.tobytes() for im in batch["image"])))

    for in_memory in (True, False):
        ds = data.load("jpeg_files", "train", image_size=(16, 24), data_dir=tmp_path / "tfds",
                       in_memory=in_memory)
        assert ds.image_shape == (16, 24, 3) and len(ds) == 6
        assert examples(ds) == examples(folder)


def test_8bit_arrays_of_other_channel_counts_are_refused_by_name():
    from jaxcnn.data.catalog import fit_uint8
    with pytest.raises(ValueError, match="cannot convert images with 4 channels to 3"):
        fit_uint8(np.zeros((5, 5, 4), np.uint8), (5, 5, 3))
    np.testing.assert_array_equal(fit_uint8(np.full((5, 5), 7, np.uint8), (5, 5, 3)), 7)

