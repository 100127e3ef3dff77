"""Streaming image folders (jaxcnn.data.stream): worker processes, determinism, resume."""
import io
import os
import signal
import warnings

import jax
import numpy as np
import pytest
from PIL import Image
from zoo_utils import DelegatingDataset

import jaxcnn
from jaxcnn import data, models, train
from jaxcnn.data.stream import center_crop, random_resized_crop, stream_folder

SIZE = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes of 16 images of varied sizes and modes (RGB/L/RGBA/CMYK; JPEG and PNG)."""
    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "CMYK"]
    for c in range(3):
        (root / f"class{c}").mkdir()
        for i in range(16):
            h, w = int(rng.integers(30, 60)), int(rng.integers(40, 80))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            pixels[..., c] = 255  # a colour per class, so a network can learn something
            image = Image.fromarray(pixels).convert(modes[i % 4])
            fmt = "PNG" if image.mode in ("L", "RGBA") else "JPEG"
            image.save(root / f"class{c}" / f"{i:02d}.{fmt.lower()}", format=fmt)
    return root


def epoch_batches(stream, epoch, **kwargs):
    return list(stream.batches(12, shuffle=True, seed=3, epoch=epoch, drop_remainder=True,
                               **kwargs))


def test_batches_are_the_same_with_any_number_of_workers(folder):
    runs = {}
    for workers in (0, 2):
        stream = stream_folder(folder, SIZE, workers=workers)
        runs[workers] = [epoch_batches(stream, epoch) for epoch in (1, 2)]
        stream.close()
    for a, b in zip(sum(runs[0], []), sum(runs[2], [])):
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(a[key], b[key])
    first, second = runs[0]
    assert first[0]["image"].dtype == np.uint8 and first[0]["image"].shape == (12, SIZE, SIZE, 3)
    assert len(first) == 4 and all(b["mask"].all() for b in first)
    assert not np.array_equal(first[0]["image"], second[0]["image"])  # new crops and order
    labels = np.concatenate([b["label"] for b in first])
    assert sorted(labels) == [0] * 16 + [1] * 16 + [2] * 16  # every example once


def test_a_resumed_epoch_reads_exactly_the_batches_it_had_left(folder):
    stream = stream_folder(folder, SIZE, workers=1)
    full = epoch_batches(stream, 2)
    fresh = stream_folder(folder, SIZE, workers=1)
    rest = epoch_batches(fresh, 2, start_batch=2)
    assert len(rest) == 2
    for a, b in zip(full[2:], rest):
        np.testing.assert_array_equal(a["image"], b["image"])
    stream.close(), fresh.close()


def test_evaluation_reads_every_image_once_center_cropped(folder):
    stream = stream_folder(folder, SIZE, training=False, workers=0)
    batches = list(stream.batches(20, drop_remainder=False))
    mask = np.concatenate([b["mask"] for b in batches])
    assert len(batches) == 3 and mask.sum() == 48 and not mask[-12:].any()
    with Image.open(stream.files[0]) as image:
        expected = center_crop(np.asarray(image.convert("RGB")), (SIZE, SIZE))
    np.testing.assert_array_equal(batches[0]["image"][0], expected)
    again = list(stream.batches(20, drop_remainder=False))  # the same pass, from the same feed
    np.testing.assert_array_equal(again[1]["image"], batches[1]["image"])


def test_center_crop_equals_resize_then_crop():
    """torchvision's eval transform in two steps (shorter side to size/0.875, center crop)
    against the one-step crop-and-resize: equal up to resampling (smooth image)."""
    y, x = np.mgrid[0:300, 0:400]
    pixels = np.stack([x * 255 / 399, y * 255 / 299, (x + y) * 255 / 698], -1).astype(np.uint8)
    image = Image.fromarray(pixels)
    ours = center_crop(pixels, (224, 224)).astype(np.float32)
    resized = image.resize((round(400 * 256 / 300), 256), Image.Resampling.BILINEAR)
    left, top = (resized.width - 224) // 2, (256 - 224) // 2
    reference = np.asarray(resized.crop((left, top, left + 224, top + 224)), np.float32)
    assert np.abs(ours - reference).max() <= 3


def test_random_resized_crops_follow_inception_ranges():
    """Pixels encode their coordinates, so each crop's box is read back from its corners."""
    y, x = np.mgrid[0:300, 0:400]
    pixels = np.stack([x * 255 // 399, y * 255 // 299, np.zeros_like(x)], -1).astype(np.uint8)
    areas, ratios = [], []
    rng = np.random.default_rng(0)
    for _ in range(200):
        crop = random_resized_crop(pixels, (64, 64), rng).astype(np.float64)
        w = (crop[0, -1, 0] - crop[0, 0, 0]) * 399 / 255 * 64 / 63
        h = (crop[-1, 0, 1] - crop[0, 0, 1]) * 299 / 255 * 64 / 63
        areas.append(w * h / (400 * 300))
        ratios.append(w / h)
    assert 0.05 < min(areas) < 0.2 and max(areas) > 0.6 and max(areas) < 1.05
    assert min(ratios) > 0.7 and max(ratios) < 1.45


def test_unreadable_files_are_masked_and_named(folder, tmp_path):
    bad = tmp_path / "bad"
    for c in ("a", "b"):
        (bad / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40, 40), (i * 60, 0, 0)).save(bad / c / f"{i}.png")
    (bad / "a" / "broken.jpg").write_bytes(b"not an image")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 255, 0)).save(buffer, format="JPEG")
    (bad / "b" / "truncated.jpg").write_bytes(buffer.getvalue()[:200])
    stream = stream_folder(bad, SIZE, training=False, workers=1)
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image file\(s\) of bad in "
                                         r"epoch 0: .*broken\.jpg .*truncated\.jpg"):
        batches = list(stream.batches(10, drop_remainder=False))
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.sum() == 8 and len(mask) == 10
    stream.close()


def test_bad_folders_and_arguments_are_refused(tmp_path):
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(ValueError, match="has no class sub-folders"):
        stream_folder(tmp_path / "flat", SIZE)
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    (tmp_path / "classes" / "dog").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "classes" / "cat" / "x.png")
    with pytest.raises(ValueError, match=r"class folder\(s\) 'dog' .* hold no files"):
        stream_folder(tmp_path / "classes", SIZE)
    with pytest.raises(ValueError, match=r"workers must be an int from 0 to \d+ \(the cores"):
        stream_folder(tmp_path / "classes", SIZE, workers=10_000)
    with pytest.raises(ValueError, match="is not a folder"):
        stream_folder(tmp_path / "none", SIZE)


def test_uint8_batches_train_exactly_like_their_float_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 32, 1), dtype=np.uint8)
    on_host = images.astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(np.asarray(jax.jit(data.unit_float)(images)), on_host)
    np.testing.assert_array_equal(data.unit_float(images), on_host)
    model = models.create("lenet5", num_classes=3)
    state = train.create_state(model, train.make_optimizer("sgd", 0.1), seed=0)
    batch = {"label": np.arange(8) % 3, "mask": np.ones(8, bool)}
    step = jax.jit(train.train_step)
    a, _ = step(state, {**batch, "image": images})
    b, _ = step(state, {**batch, "image": on_host})
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)


class CtrlCAfter(DelegatingDataset):
    """Sends this process SIGINT after `count` training batches (a user pressing Ctrl-C at
    a known point)."""

    def __init__(self, dataset, count):
        super().__init__(dataset)
        self.count = count

    def batches(self, *args, **kwargs):
        for batch in self.dataset.batches(*args, **kwargs):
            yield batch
            self.count -= 1
            if self.count == 0:
                os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.slow
def test_a_run_stopped_mid_epoch_resumes_bit_identical_with_workers(folder, tmp_path):
    options = dict(epochs=2, batch_size=12, learning_rate=1e-3, progress=False, seed=1)
    model = models.create("cnn4", num_classes=3, input_shape=(SIZE, SIZE, 3), padding="SAME")
    whole = stream_folder(folder, SIZE, workers=1)
    reference, _ = jaxcnn.fit(model, whole, workdir=tmp_path / "whole", **options)
    whole.close()
    stream = stream_folder(folder, SIZE, workers=1)
    with pytest.raises(train.Preempted):
        jaxcnn.fit(model, CtrlCAfter(stream, 6), workdir=tmp_path / "run", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "continuing the run from step 6"
        resumed, history = jaxcnn.fit(model, stream, workdir=tmp_path / "run", **options)
    stream.close()
    assert len(history) == 2
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(reference.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("training", [True, False])
def test_two_processes_read_disjoint_rows_whose_union_is_the_global_batch(folder, training):
    """Each of 2 processes reads only its half of every global batch (multi-host runs)."""
    stream = stream_folder(folder, SIZE, training=training, workers=0)
    args = dict(shuffle=training, seed=5, epoch=1, drop_remainder=training)
    whole = list(stream.batches(16, process_index=0, process_count=1, **args))
    halves = [list(stream.batches(16, process_index=i, process_count=2, **args)) for i in (0, 1)]
    assert len(whole) == len(halves[0]) == len(halves[1])
    for full, first, second in zip(whole, *halves):
        assert len(first["label"]) == len(second["label"]) == 8
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), full[key])
    stream.close()


@pytest.mark.slow
def test_train_learns_from_a_folder_and_visualize_reads_the_run(folder, tmp_path):
    from jaxcnn import cli
    from jaxcnn.runs import RunDir, load_run
    assert cli.main(["train", "--dataset", f"folder:{folder}", "--workers", "1",
                     "--val-fraction", "0.25", "--epochs", "4", "--quiet",
                     "--workdir", str(tmp_path / "run")]) == 0
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["dataset"] == f"folder:{folder}" and summary["val_fraction"] == 0.25
    # 12 validation images, one colour channel saturated per class: 0.92 on a 2-core Intel
    # Xeon, far above chance (1/3)
    assert summary["test_accuracy"] >= 0.5
    run = load_run(tmp_path / "run")
    assert len(run.test_data) == 12 and run.test_data.training is False
    assert run.model.input_shape == (32, 32, 3)


MEASURE_RSS = """
import resource, sys
from jaxcnn.data.stream import stream_folder

if __name__ == "__main__":
    stream = stream_folder(sys.argv[1], 64, workers=1)
    for epoch in (1, 2):
        for batch in stream.batches(32, shuffle=True, epoch=epoch, drop_remainder=True):
            pass
    stream.close()
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(peak)
"""


def write_jpegs(root, count):
    rng = np.random.default_rng(1)
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(count // 2):
            pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i}.jpg", quality=85)


@pytest.mark.slow
def test_memory_does_not_grow_with_the_folder(tmp_path):
    """Peak resident memory (this process + its decoding worker) streaming 1,600 images
    against 160: within 10% (the images are never all in memory). Measured on a 2-core
    Intel Xeon: 521,816 KiB and 523,004 KiB (+0.2%)."""
    import subprocess
    import sys
    script = tmp_path / "measure.py"
    script.write_text(MEASURE_RSS)
    peaks = {}
    for count in (160, 1600):
        write_jpegs(tmp_path / str(count), count)
        out = subprocess.run([sys.executable, str(script), str(tmp_path / str(count))],
                             capture_output=True, text=True, timeout=300, check=True).stdout
        peaks[count] = int(out.split()[-1])
    assert peaks[1600] < 1.1 * peaks[160], peaks


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "PNG"), ("RGBA", "PNG"),
                                       ("CMYK", "JPEG"), ("P", "GIF"), ("RGB", "BMP")])
def test_decode_matches_pillow_for_every_mode_and_format(mode, fmt):
    from jaxcnn.data.decode import decode
    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    for channels, pil_mode in ((3, "RGB"), (1, "L")):
        got = decode(buffer.getvalue(), channels)
        with Image.open(io.BytesIO(buffer.getvalue())) as image:
            expected = np.asarray(image.convert(pil_mode)).reshape(48, 64, channels)
        assert got.shape == (48, 64, channels) and got.dtype == np.uint8
        # the same libjpeg-turbo decode; colour conversions may round differently
        assert np.abs(got.astype(int) - expected).max() <= (3 if fmt == "JPEG" else 1)


@pytest.mark.parametrize("subsampling", [0, 2])  # 4:4:4 and 4:2:0 chroma
def test_jpegs_decode_to_the_pixels_opencv_gives(subsampling):
    import cv2
    from jaxcnn.data.decode import decode
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(
        buffer, format="JPEG", quality=85, subsampling=subsampling)
    data = np.frombuffer(buffer.getvalue(), np.uint8)
    np.testing.assert_array_equal(decode(buffer.getvalue(), 3),
                                  cv2.imdecode(data, cv2.IMREAD_COLOR_RGB))
    np.testing.assert_array_equal(decode(buffer.getvalue(), 1)[..., 0],
                                  cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_decompression_bomb_is_refused_before_decoding(monkeypatch, fmt):
    from jaxcnn.data.decode import UNREADABLE, decode
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buffer, format=fmt)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 300x300 is then a "bomb"
    with pytest.raises(UNREADABLE, match="decompression bomb"):
        decode(buffer.getvalue(), 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 45_000)
    assert decode(buffer.getvalue(), 3).shape == (300, 300, 3)  # within twice the limit


def test_a_random_access_source_reads_the_same_batches_in_worker_processes():
    """An ArrayRecord-like source (here a list of examples) decoded by 2 workers."""
    rng = np.random.default_rng(0)
    examples = [{"image": rng.integers(0, 256, (10, 12, 3), np.uint8), "label": i % 4}
                for i in range(40)]
    batches = {}
    for workers in (0, 2):
        ds = data.SourceDataset(examples, num_classes=4, image_shape=(8, 8, 3), name="records",
                                workers=workers)
        batches[workers] = list(ds.batches(16, shuffle=True, seed=2, epoch=3,
                                           drop_remainder=True))
        ds.close()
    assert len(batches[0]) == 2 and batches[0][0]["image"].dtype == np.float32
    for a, b in zip(batches[0], batches[2]):
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(a[key], b[key])


def test_from_folder_streams_a_folder_over_its_memory_budget(folder):
    in_memory = data.from_folder(folder, image_size=SIZE, cache=False)
    with pytest.warns(UserWarning, match=r"48 images of 32x32x3 would take 0\.0 GiB as uint8, "
                                         r"over max_bytes; they are read while training"):
        streamed = data.from_folder(folder, image_size=SIZE, max_bytes=1000, workers=0)
    assert isinstance(streamed, data.FolderStream) and not streamed.training
    batch = next(streamed.batches(48))
    assert batch["image"].dtype == np.uint8 and batch["label"].tolist() == in_memory.labels.tolist()
    # the same whole images, resized by OpenCV (streamed) or Pillow (in memory): the
    # fixture's noise resamples differently, each image's colour means agree
    assert in_memory.images.dtype == np.uint8
    np.testing.assert_allclose(batch["image"].mean(axis=(1, 2)), in_memory.images.mean(axis=(1, 2)),
                               atol=0.02 * 255)
    train_part, held_out = data.split(streamed, 0.25, seed=0)
    assert (len(train_part), len(held_out)) == (36, 12)
    assert held_out.labels == tuple(data.split(in_memory, 0.25, seed=0)[1].labels.tolist())


def test_a_worker_that_dies_is_an_error_naming_the_batch_files_not_a_hang(folder):
    import multiprocessing
    stream = stream_folder(folder, SIZE, workers=2)
    # 12 batches: more than the workers can have read ahead (2 each) when they die
    batches = stream.batches(4, shuffle=True, seed=0, epoch=1, drop_remainder=True)
    next(batches)
    workers = multiprocessing.active_children()
    assert workers
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)  # as the kernel's OOM killer or a segfault would
    with pytest.raises(RuntimeError, match=r"reading batch \d+ of epoch 1 of stream\d* failed: "
                                           r"Worker process was terminated.* Its files: .*"
                                           r"class\d/\d+\.(png|jpeg)"):
        for _ in batches:
            pass
    stream.close()
