"""The model zoo: parameter counts, forward passes, activation names and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models

# Published parameter counts (torchvision / Keras) at 224x224x3 with 1000 classes.
PUBLISHED = {"vgg16": 138_357_544, "vgg19": 143_667_240, "resnet18": 11_689_512,
             "resnet50": 25_557_032, "alexnet": 61_100_840,
             # torchvision's other variants, same source
             "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg11_bn": 132_868_840,
             "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
             "resnet34": 21_797_672}
# Small inputs (H, W, C), num_classes for the forward pass of every model.
SMALL = {"lenet5": (32, 32, 1), "lenet5_classic": (32, 32, 1), "cnn4": (46, 46, 3),
         "alexnet": (63, 63, 3)}


def small_input_shape(name):
    return SMALL.get(name, (32, 32, 3))


def variable_shapes(model, input_shape=None):
    x = jax.ShapeDtypeStruct((1, *(input_shape or model.input_shape)), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)


def param_count(model, input_shape=None):
    shapes = variable_shapes(model, input_shape)["params"]
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_equal_the_published_ones(name):
    assert param_count(models.create(name, num_classes=1000, input_shape=(224, 224, 3))) == PUBLISHED[name]


def test_cnn4_has_the_seed_parameter_count():
    # Seed 004's Keras summary at 150x150x3 with one sigmoid unit: 3,453,121; two logits add 513.
    assert param_count(models.create("cnn4")) == 3_453_121 + 513


def test_registry_has_every_agreed_name():
    expected = {"lenet5", "lenet5_classic", "cnn4", "alexnet", "resnet18", "resnet34", "resnet50",
                "resnet18_cifar", "resnet34_cifar", "resnet50_cifar"}
    expected |= {f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn")}
    assert set(models.names()) == expected
