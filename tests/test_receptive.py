"""Receptive fields: analytic == measured by gradients, and published values."""
import pytest

from jaxcnn import models, receptive_field
from jaxcnn.models.receptive import empirical_receptive_field


@pytest.mark.parametrize("name,kwargs", [
    ("lenet5", {}),
    ("cnn4", {"input_shape": (64, 64, 3)}),
    ("cnn4", {"input_shape": (64, 64, 3), "padding": "SAME"}),
    # At 32x32 the deepest VGG-16 fields cover the image; the first three blocks do not.
    ("vgg16", {"input_shape": (32, 32, 3), "fc_width": 8}),
    ("resnet18", {"input_shape": (64, 64, 3), "width": 4}),
    ("alexnet", {"input_shape": (127, 127, 3), "fc_width": 8}),
])
def test_analytic_receptive_field_equals_the_gradient_footprint(name, kwargs):
    model = models.create(name, **kwargs)
    size = model.input_shape[0]
    fields = receptive_field(model)
    measured = empirical_receptive_field(model)
    assert list(measured) == list(fields)
    for layer, field in fields.items():
        centre = field.feature_size // 2
        assert measured[layer] == (field.span(centre, size),) * 2, layer


def test_published_receptive_fields():
    # Araujo, Norris & Sim, "Computing Receptive Fields of CNNs", Distill 2019.
    assert receptive_field(models.create("vgg16"))["block5_pool"][:2] == (212, 32)
    assert receptive_field(models.create("alexnet"))["pool5"][:2] == (195, 32)
    # LeNet-5 by hand: 5, 5+1=6, 6+4*2=14, 14+1*2=16 pixels; strides 1, 2, 2, 4.
    lenet = receptive_field(models.create("lenet5"))
    assert [(f.size, f.jump, f.start, f.feature_size) for f in lenet.values()] == [
        (5, 1, 0, 28), (6, 2, 0, 14), (14, 2, 0, 10), (16, 4, 0, 5)]


def test_padding_shows_in_the_start_offset():
    fields = receptive_field(models.create("resnet18"))
    assert fields["stem_conv"] == (7, 2, -3, 112)
    assert fields["stem_pool"] == (11, 4, -5, 56)


def test_receptive_field_refuses_bad_models_and_inputs():
    with pytest.raises(ValueError, match=r"input_shape=\(20, 20, 3\) is smaller than VGG accepts; use at least 32x32"):
        receptive_field(models.create("vgg11"), (20, 20, 3))
    with pytest.raises(TypeError, match="no spatial_layers"):
        receptive_field(object())
