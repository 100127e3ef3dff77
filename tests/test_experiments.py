"""The scripts in experiments/ run offline with --quick and produce what their docstrings promise."""
import hashlib
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest
from loopback import serve_folder
from test_convert import write_keras_h5
from zoo_utils import numpy_variables

from jaxcnn import models

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


def test_cats_vs_dogs_transfer_fine_tunes_only_the_head(tmp_path, monkeypatch, capsys):
    """--transfer on a narrow 1,000-class VGG-16 from a loopback mirror: the frozen base
    stays bit-identical, the new 8-class head and fc layers train."""
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import cats_vs_dogs as c
    finally:
        sys.path.pop(0)
    fields = dict(widths=(4, 8, 8, 16, 16), fc_width=32)
    model = models.create("vgg16", input_shape=(32, 32, 3), **fields)
    variables = numpy_variables(model, seed=6)
    served, source = publish_as_keras_file(model, variables, tmp_path, monkeypatch)
    train, val, _ = c.load(None, seed=0)
    with serve_folder(served) as url:
        monkeypatch.setenv("JAXCNN_WEIGHTS_MIRROR", url)
        with pytest.warns(UserWarning, match="new 'logits' layer"):
            state, history = c.transfer(train, val, source, epochs=2, batch_size=32, seed=0,
                                        **fields)
    for name, params in variables["params"].items():
        moved = not all(np.array_equal(params[k], state.params[name][k]) for k in params)
        assert moved == (not name.startswith("block")), name
    assert state.params["logits"]["kernel"].shape == (32, 8)
    c.report("transfer", history)
    assert re.search(r"transfer: train accuracy 0\.\d+, validation accuracy 0\.\d+",
                     capsys.readouterr().out)


@pytest.mark.long
@pytest.mark.slow
def test_vgg16_visualize_quick(tmp_path):
    out = _run("vgg16_visualize.py", "--quick", "--out-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert re.search(r"small VGG-16 on shapes: test accuracy 0\.\d+", out)
    logits = re.search(r"largest class logits: (.*)", out).group(1).split(", ")
    assert len(logits) == 8 and logits[0].startswith("vertical_line")
    for name in ("feature_maps.png", "filters.png", "classes.png"):
        assert (tmp_path / "run" / name).stat().st_size > 10_000


def publish_as_keras_file(model, variables, tmp_path, monkeypatch):
    """Writes `variables` as a Keras .h5 into a folder to serve, with a fresh cache; returns
    the folder and the `WeightsSource` that names the file and its sha256."""
    layers = {("predictions" if name == "logits" else name): {k: np.asarray(a) for k, a in p.items()}
              for name, p in variables["params"].items()}
    served = tmp_path / "served"
    served.mkdir()
    write_keras_h5(served / "vgg16_narrow.h5", layers)
    digest = hashlib.sha256((served / "vgg16_narrow.h5").read_bytes()).hexdigest()
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    return served, models.WeightsSource("https://example.org/vgg16_narrow.h5",
                                        f"sha256:{digest}", "caffe")


def test_vgg16_visualize_draws_pretrained_weights_from_a_mirror(tmp_path, monkeypatch, capsys):
    """The --weights path on a narrow VGG-16 with 1,000 classes, published on a loopback
    mirror (the real 528 MiB file cannot be downloaded here)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import vgg16_visualize as v
    finally:
        sys.path.pop(0)
    fields = dict(widths=(4, 8, 8, 16, 16), fc_width=32, input_shape=(32, 32, 3))
    model = models.create("vgg16", **fields)
    variables = numpy_variables(model, seed=5)
    served, source = publish_as_keras_file(model, variables, tmp_path, monkeypatch)
    with serve_folder(served) as url:
        monkeypatch.setenv("JAXCNN_WEIGHTS_MIRROR", url)
        pretrained, loaded, classes = v.imagenet_model(source, **fields)
    jax.tree.map(np.testing.assert_array_equal, loaded, variables)
    assert pretrained.preprocessing == "caffe"
    assert list(classes.values()) == ["goldfish", "flamingo", "golden retriever", "tabby",
                                      "strawberry"]
    image = v.photo(32)
    v.draw(pretrained, loaded, classes, image, tmp_path / "out", filters=2, steps=4, seed=0)
    out = capsys.readouterr().out
    assert re.search(r"largest class logits: goldfish -?\d+\.\d, flamingo", out)
    for name in ("feature_maps.png", "filters.png", "classes.png"):
        assert (tmp_path / "out" / name).stat().st_size > 5_000


def test_multi_device_quick(tmp_path):
    out = _run("multi_device.py", "--quick", cwd=tmp_path)
    assert out.startswith("8 devices")
    speeds = dict(re.findall(r"^(jit|pmap|sharded)\s+(\d+) images/s", out, re.M))
    assert set(speeds) == {"jit", "pmap", "sharded"} and all(int(s) > 0 for s in speeds.values())
    diffs = [float(d) for d in re.findall(r"vs jit: ([0-9.e+-]+)", out)]
    assert len(diffs) == 2 and max(diffs) < 1e-5


@pytest.mark.slow
def test_bench_input_runs_and_reports_every_pipeline(tmp_path):
    out = _run("bench_input.py", "--images", "300", "--workers", "1", "--skip-training",
               "--dir", str(tmp_path), cwd=tmp_path)
    rates = dict(re.findall(r"^(jaxcnn stream_folder, \w+, \d \w+)\s+(\d+) images/s", out, re.M))
    assert len(rates) == 3 and all(int(r) > 0 for r in rates.values()), out
    assert re.search(r"^tf\.data .* (images/s|not installed)", out, re.M)
    assert re.search(r"^torch DataLoader, 1 workers .* (images/s|not installed)", out, re.M)
