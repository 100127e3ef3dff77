"""The model zoo: parameter counts, forward passes, activation names and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models, ops, receptive_field
from zoo_utils import numpy_variables

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


def small_model(name, **kwargs):
    """The registered model at its small input; VGG/AlexNet with 64-unit dense layers, since
    drawing their 4096-unit layers' 60M-120M random weights dominates a test's time."""
    narrow = {"fc_width": 64} if name.startswith(("vgg", "alexnet")) else {}
    return models.create(name, num_classes=3, input_shape=small_input_shape(name), **narrow, **kwargs)


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


def test_unknown_model_names_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet101'; known models: .*resnet18_cifar.*vgg19_bn"):
        models.create("resnet101")


@pytest.mark.parametrize("name", models.names())
def test_forward_pass_on_a_small_input(name):
    shape = small_input_shape(name)
    model = small_model(name)
    variables = numpy_variables(model)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *shape)), jnp.float32)
    logits, acts = jax.jit(lambda v, x: model.apply(v, x, capture_activations=True))(variables, x)
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
    np.testing.assert_array_equal(acts["logits"], logits)
    assert sorted(acts) == sorted(models.layer_names(model))  # jit returns dicts key-sorted
    # The geometry behind receptive fields and minimum sizes matches the real feature maps.
    fields = receptive_field(model, shape)
    assert {n: acts[n].shape[1:3] for n in fields} == {n: (f.feature_size,) * 2 for n, f in fields.items()}


def vgg_names(convs):
    names = []
    for b, n in enumerate(convs, start=1):
        names += [f"block{b}_conv{i}" for i in range(1, n + 1)] + [f"block{b}_pool"]
    return names + ["flatten", "fc1", "fc2", "logits"]


@pytest.mark.parametrize("name,expected", [
    ("cnn4", [f"block{b}_{k}" for b in range(1, 5) for k in ("conv", "pool")]
     + ["flatten", "dropout", "fc1", "logits"]),
    ("vgg16", vgg_names((2, 2, 3, 3, 3))),
    ("vgg19_bn", vgg_names((2, 2, 4, 4, 4))),
    ("alexnet", ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5",
                 "flatten", "fc1", "fc2", "logits"]),
    ("resnet18", ["stem_conv", "stem_pool"] + [f"stage{s}_block{b}" for s in range(1, 5)
                                              for b in (1, 2)] + ["avgpool", "logits"]),
    ("resnet50_cifar", ["stem_conv"] + [f"stage{s}_block{b}" for s, n in zip(range(1, 5), (3, 4, 6, 3))
                                        for b in range(1, n + 1)] + ["avgpool", "logits"]),
])
def test_activation_names_are_stable(name, expected):
    assert models.layer_names(models.create(name)) == expected


def test_vgg_parameters_are_named_like_its_activations():
    params = variable_shapes(models.create("vgg16_bn", input_shape=(32, 32, 3)))["params"]
    assert {"block1_conv1", "block1_conv1_bn", "block5_conv3", "fc1", "fc2", "logits"} <= set(params)
    assert params["block1_conv1"]["kernel"].shape == (3, 3, 3, 64)


def test_dropout_follows_the_train_flag_and_the_key():
    model = models.create("cnn4", input_shape=(46, 46, 3), dropout_rate=0.5)
    variables = numpy_variables(model)
    x = jnp.ones((2, 46, 46, 3))
    apply = jax.jit(model.apply, static_argnames="train")
    train = [apply(variables, x, train=True, rngs={"dropout": jax.random.key(k)}) for k in (0, 0, 1)]
    np.testing.assert_array_equal(train[0], train[1])
    assert not np.allclose(train[0], train[2])
    np.testing.assert_array_equal(apply(variables, x), apply(variables, x, train=False))


def test_batchnorm_uses_batch_statistics_in_training_only():
    model = models.create("resnet18_cifar", stage_sizes=(1, 1, 1, 1), width=4, input_shape=(8, 8, 3))
    variables = numpy_variables(model)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 8, 8, 3)), jnp.float32)
    _, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    mean = updates["batch_stats"]["stem_bn"]["mean"]
    # PyTorch's rule: running = 0.9 * running + 0.1 * batch mean of the stem conv output.
    stem = jax.lax.conv_general_dilated(x, variables["params"]["stem_conv"]["kernel"], (1, 1),
                                        ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    expected = 0.9 * variables["batch_stats"]["stem_bn"]["mean"] + 0.1 * stem.mean((0, 1, 2))
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)


def test_batchnorm_axis_name_synchronizes_statistics():
    model = models.create("vgg11_bn", widths=(2, 2, 2, 2, 2), fc_width=4, input_shape=(32, 32, 3),
                          axis_name="batch")
    variables = numpy_variables(model)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 32, 32, 3)), jnp.float32)
    rngs = {"dropout": jax.random.key(0)}
    step = lambda x: model.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])[1]  # noqa: E731
    split = jax.jit(jax.vmap(step, axis_name="batch"))(x.reshape(2, 2, 32, 32, 3))
    whole = jax.jit(lambda x: model.clone(axis_name=None).apply(
        variables, x, train=True, rngs=rngs, mutable=["batch_stats"])[1])(x)
    jax.tree.map(lambda s, w: np.testing.assert_allclose(s[0], w, rtol=1e-4, atol=1e-6), split, whole)


def test_bfloat16_compute_keeps_float32_parameters():
    model = models.create("resnet18_cifar", width=4, input_shape=(8, 8, 3), dtype=jnp.bfloat16)
    variables = numpy_variables(model)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    assert jax.eval_shape(model.apply, variables, jnp.ones((2, 8, 8, 3))).dtype == jnp.bfloat16


@pytest.mark.parametrize("name,shape,message", [
    ("vgg16", (16, 16, 3), r"VGG-16 accepts images of at least 32x32 pixels, got an input of shape \(1, 16, 16, 3\)"),
    ("alexnet", (62, 62, 3), r"AlexNet accepts images of at least 63x63 pixels"),
    ("vgg11", (32, 32, 1), r"expects images of shape \(batch, H, W, 3\) \(NHWC, 3 channels\), got an input of shape \(1, 32, 32, 1\)"),
    ("resnet18", (32, 32, 4), r"ResNet \(imagenet stem\) expects images of shape \(batch, H, W, 3\)"),
    ("cnn4", (64, 64, 3), r"CNN4 expects images of shape \(batch, 150, 150, 3\).*got an input of shape \(1, 64, 64, 3\)"),
])
def test_bad_input_shapes_are_refused_before_compiling(name, shape, message):
    model = models.create(name)
    with pytest.raises(ValueError, match=message):
        jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, *shape), jnp.float32))


def test_cnn4_built_too_small_says_the_smallest_size():
    model = models.create("cnn4", input_shape=(40, 40, 3))
    with pytest.raises(ValueError, match="at least 46x46"):
        variable_shapes(model)
    assert variable_shapes(models.create("cnn4", input_shape=(16, 16, 3), padding="SAME"))


def test_adaptive_avg_pool_matches_a_naive_reference():
    x = np.random.default_rng(3).normal(size=(2, 5, 7, 3)).astype(np.float32)
    out = np.asarray(ops.adaptive_avg_pool(x, (3, 4)))
    expected = np.zeros((2, 3, 4, 3), np.float32)
    for i in range(3):
        for j in range(4):  # PyTorch's windows: [floor(i*n/o), ceil((i+1)*n/o))
            rows = slice(i * 5 // 3, -(-(i + 1) * 5 // 3))
            cols = slice(j * 7 // 4, -(-(j + 1) * 7 // 4))
            expected[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ops.adaptive_avg_pool(x, (5, 7)), x)
