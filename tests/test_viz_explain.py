"""`viz.attribute(method=...)`: every method through one entry point, as overlayable maps,
on grayscale and RGB models, and its errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models, viz
from jaxcnn.viz.explain import METHODS

GRAY = models.create("lenet5")
GRAY_VARS = GRAY.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
RGB = models.create("lenet5", input_shape=(32, 32, 3), num_classes=4)
RGB_VARS = RGB.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
OPTIONS = {"smoothgrad": {"key": jax.random.key(0), "samples": 2},
           "integrated_gradients": {"steps": 8}, "occlusion": {"window": 8, "stride": 8}}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("model, variables", [(GRAY, GRAY_VARS), (RGB, RGB_VARS)],
                         ids=["grayscale", "rgb"])
def test_every_method_gives_maps_in_unit_range_for_any_channel_count(model, variables, method):
    images = jax.random.uniform(jax.random.key(1), (2, *model.input_shape))
    layer = "conv2" if METHODS[method][1] else None
    maps = viz.attribute(model, variables, images, 1, method=method, layer=layer,
                         **OPTIONS.get(method, {}))
    assert maps.shape == (2, 32, 32) and float(maps.min()) >= 0
    np.testing.assert_allclose(np.asarray(maps).reshape(2, -1).max(axis=1), 1.0, rtol=1e-5)


def test_signed_methods_become_heatmaps_of_their_attributions():
    images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1))
    signed = viz.input_x_gradient(GRAY, GRAY_VARS, images, 3)
    np.testing.assert_allclose(viz.attribute(GRAY, GRAY_VARS, images, 3, method="input_x_gradient"),
                               viz.integrated.heatmap(signed), rtol=1e-6)
    np.testing.assert_array_equal(viz.attribute(GRAY, GRAY_VARS, images, 3, method="gradcam",
                                                layer="pool1"),
                                  viz.gradcam(GRAY, GRAY_VARS, images, "pool1", 3))


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "lime"}, "unknown attribution method 'lime'; use one of saliency, smoothgrad"),
    ({"method": "gradcam"}, "method 'gradcam' maps a layer: pass layer="),
    ({"method": "saliency", "layer": "conv2"}, "takes no layer; the layer methods are gradcam"),
    ({"method": "occlusion", "window": 40}, r"window \(40, 40\) is larger than the 32x32"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.attribute(GRAY, GRAY_VARS, jnp.zeros((1, 32, 32, 1)), **kwargs)
