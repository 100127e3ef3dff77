"""`jaxcnn visualize` and `jaxcnn explain` on a run directory as `jaxcnn train` writes it
(run.json + variables.msgpack), every kind of picture, and their errors."""
import json

import numpy as np
import optax
import pytest
from PIL import Image

import jaxcnn
from jaxcnn.cli import main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An untrained LeNet-5 saved exactly as `jaxcnn train --model lenet5 --dataset digits` does."""
    path = tmp_path_factory.mktemp("run")
    model = jaxcnn.models.create("lenet5", num_classes=10, input_shape=(32, 32, 1))
    state = jaxcnn.train.create_state(model, optax.adam(1e-3), seed=0)
    run = jaxcnn.runs.RunDir(path)
    run.write_variables(state.variables())
    run.write_summary({"model": "lenet5", "dataset": "digits"})
    return path


@pytest.mark.parametrize("what, extra, files", [
    ("feature-maps", ["--layer", "conv1", "--layer", "conv2", "--most-active"], ["feature_maps.png"]),
    ("filters", ["--layer", "conv2", "--channels", "0", "5", "--gif"],
     ["filters_conv2.png", "weights.png", "filters_conv2.gif"]),
    ("classes", [], ["classes.png"]),
    ("saliency", ["--images", "2"], ["saliency.png", "smoothgrad.png"]),
    ("gradcam", [], ["gradcam_pool2.png"]),
])
def test_visualize_writes_each_kind_of_picture(workdir, tmp_path, capsys, what, extra, files):
    status = main(["visualize", "--workdir", str(workdir), "--what", what, "--steps", "3",
                   "--out", str(tmp_path), *extra])
    assert status == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / f) for f in files]
    for name in files:
        with Image.open(tmp_path / name) as image:
            assert image.format == ("GIF" if name.endswith(".gif") else "PNG")
            assert image.size[0] > 100
            if name.endswith(".gif"):
                assert image.n_frames == 4  # steps 0, 1, 2, 3


def test_visualize_refuses_unknown_layers_and_missing_runs(workdir, tmp_path, capsys):
    assert main(["visualize", "--workdir", str(workdir), "--what", "gradcam", "--layer", "conv9"]) == 2
    assert "unknown layer 'conv9' for --layer; layers with feature maps: conv1, pool1, conv2, pool2" \
        in capsys.readouterr().err
    assert main(["visualize", "--workdir", str(tmp_path), "--what", "filters"]) == 2
    assert "run.json, variables.msgpack missing" in capsys.readouterr().err
    assert main(["visualize", "--workdir", str(workdir), "--what", "filters", "--channels", "99"]) == 2
    assert "channel index for layer 'conv1' 99 is out of range" in capsys.readouterr().err


def test_explain_writes_maps_metrics_and_contact_sheets(workdir, tmp_path, capsys):
    out = tmp_path / "explain"
    status = main(["explain", "--workdir", str(workdir), "--method",
                   "saliency,integrated_gradients,gradcam", "--images", "6", "--metrics",
                   "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    names = {"maps.npz", "saliency.png", "integrated_gradients.png", "gradcam.png",
             "metrics.json", "metrics.png", "faithful_saliency.png",
             "faithful_integrated_gradients.png", "faithful_gradcam.png"}
    assert {p.name for p in out.iterdir()} == names
    with np.load(out / "maps.npz") as maps:
        assert maps["gradcam"].shape == (6, 32, 32) and maps["labels"].shape == (6,)
        assert 0 <= maps["saliency"].min() and maps["saliency"].max() <= 1
    record = json.loads((out / "metrics.json").read_text())
    assert record["layer"] == "pool2" and set(record["table"]) == {
        "saliency", "integrated_gradients", "gradcam"}
    assert set(record["table"]["gradcam"]) == {"deletion", "insertion", "infidelity",
                                               "max_sensitivity"}
    for name in names - {"maps.npz", "metrics.json"}:
        assert Image.open(out / name).size[0] > 100
    assert main(["explain", "--workdir", str(workdir), "--method", "lime"]) == 2
    assert "--method must name methods from saliency" in capsys.readouterr().err
