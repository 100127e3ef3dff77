"""Weights saved by real Keras 3 (JAX backend) in every layout load into jaxcnn and give
Keras' own predictions, Keras' preprocessing included (skipped where keras is missing)."""
import os

import jax
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

from jaxcnn import models  # noqa: E402 (after the backend is chosen)

pytestmark = pytest.mark.slow

# (Keras application, its preprocessing module, jaxcnn name, input size, fields for both).
# Keras' VGG flattens the last feature map, ours pools it to 7x7 first (as torchvision):
# the same network at 224x224, so the VGG with its classifier is compared there.
NETWORKS = {
    "vgg16": (keras.applications.VGG16, keras.applications.vgg16, "vgg16", 224, {}),
    "vgg19_notop": (keras.applications.VGG19, keras.applications.vgg19, "vgg19", 48,
                    {"include_top": False, "pooling": "max"}),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50, "resnet50", 64, {}),
    "resnet50_notop": (keras.applications.ResNet50, keras.applications.resnet50, "resnet50", 64,
                       {"include_top": False, "pooling": "avg"}),
}
LAYOUTS = ("keras3.weights.h5", "whole_model.h5")


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def saved(request, tmp_path_factory):
    """A randomly initialized Keras network saved in each layout, with inputs and outputs."""
    application, module, name, size, fields = NETWORKS[request.param]
    keras.utils.set_random_seed(0)
    top = {"classes": 7, "classifier_activation": None} if "pooling" not in fields else {}
    net = application(weights=None, input_shape=(size, size, 3), **top, **fields)
    # Random BatchNorm statistics, so that their conversion is checked too.
    rng = np.random.default_rng(0)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
    folder = tmp_path_factory.mktemp(name)
    net.save_weights(folder / LAYOUTS[0])
    net.save(folder / LAYOUTS[1])
    images = rng.uniform(size=(2, size, size, 3)).astype(np.float32)  # RGB in [0, 1]
    expected = np.asarray(net(module.preprocess_input(images * 255.0)))
    return name, size, fields, folder, images, expected


@pytest.mark.parametrize("layout", LAYOUTS)
def test_keras_files_give_keras_predictions(saved, layout):
    name, size, fields, folder, images, expected = saved
    model = models.create(name, num_classes=7, input_shape=(size, size, 3),
                          weights=folder / layout, **fields,
                          **({"stride_in_1x1": True} if name == "resnet50" else {}))
    assert model.preprocessing == "caffe"
    variables = model.init(jax.random.key(0), images[:1])
    got = np.asarray(model.apply(variables, images))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
