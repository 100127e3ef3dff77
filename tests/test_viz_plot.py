"""jaxcnn.viz.features and jaxcnn.viz.plot: feature maps and filter weights against the
model's own arrays, plots as Figures and PNG/GIF files."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from jaxcnn.models import LeNet5
from jaxcnn.viz import feature_maps, filter_weights, most_active, plot

MODEL = LeNet5()
VARIABLES = MODEL.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
IMAGES = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1))


def test_feature_maps_are_the_models_activations():
    _, acts = MODEL.apply(VARIABLES, IMAGES, capture_activations=True)
    maps = feature_maps(MODEL, VARIABLES, IMAGES, ["pool2", "conv1"])
    assert list(maps) == ["pool2", "conv1"]
    np.testing.assert_allclose(maps["conv1"], acts["conv1"], rtol=1e-6)
    np.testing.assert_allclose(feature_maps(MODEL, VARIABLES, IMAGES, "pool2")["pool2"], acts["pool2"],
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"unknown layer 'conv3'; the model's layers are: conv1, pool1"):
        feature_maps(MODEL, VARIABLES, IMAGES, "conv3")


def test_most_active_orders_channels_by_mean_activation():
    maps = np.zeros((4, 4, 5), np.float32)
    maps[..., 3], maps[..., 1], maps[0, 0, 4] = 2.0, 1.0, 5.0
    assert list(most_active(maps, 3)) == [3, 1, 4]


def test_filter_weights_are_the_first_kernels_scaled_per_filter():
    kernel = np.asarray(VARIABLES["params"]["conv1"]["kernel"])  # HWIO (5, 5, 1, 6)
    weights = filter_weights(VARIABLES)
    assert weights.shape == (6, 5, 5, 1)
    for o in range(6):
        k = kernel[..., o]
        np.testing.assert_allclose(weights[o], (k - k.min()) / (k.max() - k.min()), rtol=1e-5)
    assert filter_weights(VARIABLES, "conv2").shape == (16, 5, 5, 6)
    with pytest.raises(ValueError, match=r"unknown conv layer 'fc1'; conv layers: conv1, conv2"):
        filter_weights(VARIABLES, "fc1")


def test_image_grid_is_a_figure_with_titles_saved_as_png(tmp_path):
    rgb = np.random.default_rng(0).uniform(size=(5, 8, 8, 3))
    fig = plot.image_grid(rgb, [f"f{i}" for i in range(5)], ncols=3, title="grid",
                          path=tmp_path / "grid.png")
    assert isinstance(fig, Figure)
    titled = [ax.get_title() for ax in fig.axes if ax.images]
    assert titled == ["f0", "f1", "f2", "f3", "f4"] and len(fig.axes) == 6
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), rgb[0])
    with Image.open(tmp_path / "grid.png") as image:
        assert image.format == "PNG"
    with pytest.raises(ValueError, match="got 2 titles for 5 images"):
        plot.image_grid(rgb, ["a", "b"])


def test_feature_map_grid_and_overlay(tmp_path):
    found = feature_maps(MODEL, VARIABLES, IMAGES, ["conv1", "conv2"])
    maps = {k: np.asarray(v[0]) for k, v in found.items()}
    fig = plot.feature_map_grid(maps, {"conv2": [5, 2]}, count=4, path=tmp_path / "maps.png")
    shown = [ax.get_title() for ax in fig.axes if ax.images]
    assert shown == ["conv1[0]", "[1]", "[2]", "[3]", "conv2[5]", "[2]"]
    fig = plot.overlay(IMAGES, np.zeros((2, 32, 32)), ["a", "b"], path=tmp_path / "overlay.png")
    assert len([ax for ax in fig.axes if ax.images]) == 4 and (tmp_path / "overlay.png").is_file()
    with pytest.raises(ValueError, match=r"heatmaps \(2, 16, 16\) must match"):
        plot.overlay(IMAGES, np.zeros((2, 16, 16)))


def test_ascent_gif_has_one_frame_per_snapshot(tmp_path):
    frames = np.linspace(0, 1, 3)[:, None, None, None, None] * np.ones((3, 2, 6, 6, 1))
    plot.ascent_gif(frames, tmp_path / "ascent.gif", ["a", "b"], steps=[0, 5, 10])
    with Image.open(tmp_path / "ascent.gif") as gif:
        assert gif.n_frames == 3
