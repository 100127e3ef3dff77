"""The scripts in experiments/ run offline with --quick and produce what their docstrings promise."""
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(script, *args, cwd):
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_handmade_filters_quick(tmp_path):
    out = _run("handmade_filters.py", "--quick", "--out", str(tmp_path / "f.png"), cwd=tmp_path)
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert "sobel x" in out


def test_handmade_filters_identity_and_blur_preserve_the_mean():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import handmade_filters
    finally:
        sys.path.pop(0)
    image = handmade_filters.load_grayscale(None, 32)
    responses = handmade_filters.apply_all(image)
    np.testing.assert_allclose(responses["identity"], image[0, ..., 0], atol=1e-6)
    inner = (slice(1, -1), slice(1, -1))  # away from the zero-padded border
    assert responses["box blur"][inner].mean() == pytest.approx(image[0, 1:-1, 1:-1, 0].mean(), rel=0.02)
    flat = np.full((1, 8, 8, 1), 0.5, np.float32)
    assert np.abs(handmade_filters.apply_all(flat)["edge detection 3"][1:-1, 1:-1]).max() < 1e-6


@pytest.mark.slow
def test_lenet5_mnist_quick(tmp_path):
    out = _run("lenet5_mnist.py", "--quick", "--out-dir", str(tmp_path / "run"), cwd=tmp_path)
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    # Seeds 0-4 on a 2-core Intel Xeon: 0.9526-0.9582; the bar leaves room for other CPUs.
    assert 0.85 < accuracy <= 1.0
    assert "conv1 (28, 28, 6), pool1 (14, 14, 6), conv2 (10, 10, 16), pool2 (5, 5, 16)" in out
    for name in ("feature_maps.png", "curves.png"):
        assert (tmp_path / "run" / name).stat().st_size > 10_000


@pytest.mark.slow
def test_cats_vs_dogs_quick(tmp_path):
    out = _run("cats_vs_dogs.py", "--quick", "--out-dir", str(tmp_path / "run"), cwd=tmp_path)
    found = dict(re.findall(r"(plain|augmented): train accuracy ([0-9.]+)", out))
    assert set(found) == {"plain", "augmented"}
    # The plain run learns beyond chance (1/8) in 6 epochs: seeds 0-4 on a 2-core Intel Xeon
    # gave 0.269-0.412, so the bar is below the worst seed for other CPU kinds. The
    # augmented run stays near chance in so few epochs (0.125-0.212), so no order of the two
    # holds for every run; it must only finish and report.
    assert float(found["plain"]) > 0.2
    assert 0.0 <= float(found["augmented"]) <= 1.0
    assert (tmp_path / "run" / "curves.png").stat().st_size > 20_000


@pytest.mark.long
@pytest.mark.slow
def test_vgg16_visualize_quick(tmp_path):
    out = _run("vgg16_visualize.py", "--quick", "--out-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert re.search(r"small VGG-16 on shapes: test accuracy 0\.\d+", out)
    logits = re.search(r"largest class logits: (.*)", out).group(1).split(", ")
    assert len(logits) == 8 and logits[0].startswith("vertical_line")
    for name in ("feature_maps.png", "filters.png", "classes.png"):
        assert (tmp_path / "run" / name).stat().st_size > 10_000


def test_vgg16_imagenet_preprocessing_matches_the_frameworks():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import vgg16_visualize as v
    finally:
        sys.path.pop(0)
    pixel = np.array([0.2, 0.5, 0.8], np.float32)
    probe = lambda mode: v.ImageNetVGG(preprocessing=mode, widths=(1,) * 5, fc_width=1,
                                       num_classes=1, input_shape=(32, 32, 3))
    # block1_conv1 reads channel 0 of the preprocessed image at the centre (times `sign`,
    # so the relu passes it): caffe's channel 0 is blue * 255 - mean, torch's red normalized.
    seen = {}
    for mode, sign in (("caffe", 1.0), ("torch", -1.0)):
        model = probe(mode)
        variables = model.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))
        kernel = np.zeros((3, 3, 3, 1), np.float32)
        kernel[1, 1, 0, 0] = sign
        params = {**variables["params"], "block1_conv1": {"kernel": kernel, "bias": np.zeros(1)}}
        image = np.broadcast_to(pixel, (1, 32, 32, 3))
        _, acts = model.apply({"params": params}, image, capture_activations=True)
        seen[mode] = float(acts["block1_conv1"][0, 16, 16, 0])
    assert seen["caffe"] == pytest.approx(0.8 * 255 - 103.939, rel=1e-5)
    assert seen["torch"] == pytest.approx((0.485 - 0.2) / 0.229, rel=1e-5)


def test_multi_device_quick(tmp_path):
    out = _run("multi_device.py", "--quick", cwd=tmp_path)
    assert out.startswith("8 devices")
    speeds = dict(re.findall(r"^(jit|pmap|sharded)\s+(\d+) images/s", out, re.M))
    assert set(speeds) == {"jit", "pmap", "sharded"} and all(int(s) > 0 for s in speeds.values())
    diffs = [float(d) for d in re.findall(r"vs jit: ([0-9.e+-]+)", out)]
    assert len(diffs) == 2 and max(diffs) < 1e-5
