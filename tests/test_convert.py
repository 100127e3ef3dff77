"""Weight import: torchvision state_dicts (against real torch nets) and Keras HDF5 files."""
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxcnn import models
from jaxcnn.models.convert import load_keras_weights, load_torch_weights, read_arrays
from zoo_utils import numpy_variables

TINY_VGG = dict(widths=(4, 8, 8, 16, 16), fc_width=32, num_classes=5)
TINY_RESNET = dict(stage_sizes=(1, 1, 1, 1), width=4, num_classes=5)


# ---------------------------------------------------------------- torch reference nets
def torch_vgg(depth, batch_norm, widths, fc_width, num_classes):
    """torchvision.models.VGG's layout (features / avgpool / classifier), built by hand."""
    from torch import nn as tnn
    layers, channels = [], 3
    for convs, width in zip(models.vgg.CONVS_PER_BLOCK[depth], widths):
        for _ in range(convs):
            layers.append(tnn.Conv2d(channels, width, 3, padding=1))
            layers += [tnn.BatchNorm2d(width), tnn.ReLU()] if batch_norm else [tnn.ReLU()]
            channels = width
        layers.append(tnn.MaxPool2d(2, 2))
    net = tnn.Module()
    net.features = tnn.Sequential(*layers)
    net.avgpool = tnn.AdaptiveAvgPool2d(7)
    net.classifier = tnn.Sequential(
        tnn.Linear(channels * 49, fc_width), tnn.ReLU(), tnn.Dropout(),
        tnn.Linear(fc_width, fc_width), tnn.ReLU(), tnn.Dropout(), tnn.Linear(fc_width, num_classes))
    net.forward = lambda x: net.classifier(net.avgpool(net.features(x)).flatten(1))
    return net


def torch_alexnet(fc_width, num_classes):
    """torchvision.models.AlexNet's layout, built by hand."""
    from torch import nn as tnn
    net = tnn.Module()
    net.features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1),
        tnn.ReLU(), tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    net.avgpool = tnn.AdaptiveAvgPool2d(6)
    net.classifier = tnn.Sequential(
        tnn.Dropout(), tnn.Linear(256 * 36, fc_width), tnn.ReLU(), tnn.Dropout(),
        tnn.Linear(fc_width, fc_width), tnn.ReLU(), tnn.Linear(fc_width, num_classes))
    net.forward = lambda x: net.classifier(net.avgpool(net.features(x)).flatten(1))
    return net


def torch_resnet(stage_sizes, width, num_classes, bottleneck, stem="imagenet", keras=False):
    """torchvision.models.ResNet's layout; `keras=True` gives Keras' ResNet-50 variant
    (stride on the first 1x1 conv, conv biases, BatchNorm epsilon 1.001e-5)."""
    import torch
    from torch import nn as tnn
    eps = 1.001e-5 if keras else 1e-5
    bn = lambda c: tnn.BatchNorm2d(c, eps=eps)  # noqa: E731
    conv = lambda i, o, k, s=1: tnn.Conv2d(i, o, k, s, k // 2, bias=keras)  # noqa: E731

    class Block(tnn.Module):
        def __init__(self, cin, planes, stride):
            super().__init__()
            out = planes * (4 if bottleneck else 1)
            if bottleneck:
                s1, s2 = (stride, 1) if keras else (1, stride)
                self.conv1, self.bn1 = conv(cin, planes, 1, s1), bn(planes)
                self.conv2, self.bn2 = conv(planes, planes, 3, s2), bn(planes)
                self.conv3, self.bn3 = conv(planes, out, 1), bn(out)
            else:
                self.conv1, self.bn1 = conv(cin, planes, 3, stride), bn(planes)
                self.conv2, self.bn2 = conv(planes, planes, 3), bn(planes)
            self.downsample = (tnn.Sequential(conv(cin, out, 1, stride), bn(out))
                               if stride != 1 or cin != out else None)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if bottleneck:
                y = self.bn3(self.conv3(torch.relu(y)))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    net = tnn.Module()
    net.conv1 = conv(3, width, 7, 2) if stem == "imagenet" else conv(3, width, 3)
    net.bn1 = bn(width)
    cin = width
    for s, blocks in enumerate(stage_sizes, start=1):
        layer = []
        for b in range(blocks):
            layer.append(Block(cin, width * 2 ** (s - 1), 2 if s > 1 and b == 0 else 1))
            cin = width * 2 ** (s - 1) * (4 if bottleneck else 1)
        setattr(net, f"layer{s}", tnn.Sequential(*layer))
    net.fc = tnn.Linear(cin, num_classes)
    pool = tnn.MaxPool2d(3, 2, 1) if stem == "imagenet" else tnn.Identity()

    def forward(x):
        x = pool(torch.relu(net.bn1(net.conv1(x))))
        for s in range(1, len(stage_sizes) + 1):
            x = getattr(net, f"layer{s}")(x)
        return net.fc(x.mean((2, 3)))
    net.forward = forward
    return net


def randomize(net, seed=0):
    """Random weights (unit-variance outputs) and BatchNorm statistics (fresh ones are trivial)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            values = torch.randn(tensor.shape, generator=gen)
            if tensor.ndim > 1:
                values /= np.sqrt(np.prod(tensor.shape[1:]))
            elif name.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values * (1.0 if tensor.ndim > 1 else 0.3) + (name.endswith("var")))
    return net.eval()


def compare_forward(net, model, variables, size):
    import torch
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        expected = net.forward(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(model.apply(variables, jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)


def state_dict_arrays(net):
    return {k: v.numpy() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------- torch import
@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_from_torch_state_dict_npz(tmp_path, batch_norm):
    pytest.importorskip("torch")
    net = randomize(torch_vgg(11, batch_norm, **TINY_VGG))
    np.savez(tmp_path / "vgg.npz", **state_dict_arrays(net))
    # 64x64 leaves a 2x2 map before the 7x7 pool, so a wrong flatten order shows.
    model = models.create("vgg11_bn" if batch_norm else "vgg11", input_shape=(64, 64, 3), **TINY_VGG)
    compare_forward(net, model, load_torch_weights(model, tmp_path / "vgg.npz"), 64)


def test_alexnet_from_torch_state_dict_safetensors(tmp_path):
    pytest.importorskip("torch")
    from safetensors.numpy import save_file
    net = randomize(torch_alexnet(fc_width=32, num_classes=5))
    save_file(state_dict_arrays(net), tmp_path / "alexnet.safetensors")
    model = models.create("alexnet", fc_width=32, num_classes=5, input_shape=(127, 127, 3))
    compare_forward(net, model, load_torch_weights(model, tmp_path / "alexnet.safetensors"), 127)


@pytest.mark.parametrize("bottleneck,stem", [(False, "imagenet"), (True, "imagenet"), (False, "cifar")])
def test_resnet_from_torch_state_dict(bottleneck, stem):
    pytest.importorskip("torch")
    net = randomize(torch_resnet(TINY_RESNET["stage_sizes"], 4, 5, bottleneck, stem))
    model = models.ResNet(bottleneck=bottleneck, stem=stem, input_shape=(32, 32, 3), **TINY_RESNET)
    compare_forward(net, model, load_torch_weights(model, state_dict_arrays(net)), 32)


# ---------------------------------------------------------------- Keras import
def write_keras_h5(path, layers, whole_model=False):
    """Writes {layer: {weight: array}} in the layout of Keras' HDF5 weight files
    (`save_weights`), or of a whole saved model (weights under "model_weights")."""
    with h5py.File(path, "w") as root:
        f = root.create_group("model_weights") if whole_model else root
        f.attrs["layer_names"] = [name.encode() for name in layers] + [b"flatten"]
        f.create_group("flatten").attrs["weight_names"] = []  # layers without weights exist too
        for name, weights in layers.items():
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in weights]
            for w, value in weights.items():
                group.create_dataset(f"{name}/{w}:0", data=value)


@pytest.mark.parametrize("whole_model", [False, True])
def test_vgg16_keras_h5_round_trip(tmp_path, whole_model):
    model = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    variables = numpy_variables(model, seed=1)
    layers = {("predictions" if name == "logits" else name): {k: np.asarray(v) for k, v in p.items()}
              for name, p in variables["params"].items()}
    write_keras_h5(tmp_path / "vgg16.h5", layers, whole_model)
    loaded = load_keras_weights(model, tmp_path / "vgg16.h5")
    jax.tree.map(np.testing.assert_array_equal, loaded, variables)


def keras_layers_from_torch(net):
    """The Keras ResNet-50 layer dict equal to a `torch_resnet(..., keras=True)` net."""
    sd = state_dict_arrays(net)
    names = {"conv1": "conv1_conv", "bn1": "conv1_bn", "fc": "predictions"}
    layers = {}
    for key, value in sd.items():
        module, leaf = key.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            continue
        if module in names:
            layer = names[module]
        else:
            stage, block, *inner = module.split(".")
            inner = {"downsample.0": "0_conv", "downsample.1": "0_bn"}.get(
                ".".join(inner), f"{inner[0][-1]}_{inner[0][:-1]}")
            layer = f"conv{int(stage[5:]) + 1}_block{int(block) + 1}_{inner}"
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        keras_leaf = {"weight": "gamma" if layer.endswith("_bn") else "kernel", "bias":
                      "beta" if layer.endswith("_bn") else "bias", "running_mean": "moving_mean",
                      "running_var": "moving_variance"}[leaf]
        layers.setdefault(layer, {})[keras_leaf] = value
    return layers


def test_resnet50_layout_from_keras_h5_matches_torch_twin(tmp_path):
    pytest.importorskip("torch")
    net = randomize(torch_resnet((1, 1, 1, 1), 4, 5, bottleneck=True, keras=True))
    write_keras_h5(tmp_path / "resnet.h5", keras_layers_from_torch(net))
    model = models.ResNet(bottleneck=True, stride_in_1x1=True, input_shape=(32, 32, 3), **TINY_RESNET)
    compare_forward(net, model, load_keras_weights(model, tmp_path / "resnet.h5"), 32)


def test_resnet50_keras_h5_round_trip_without_torch(tmp_path):
    model = models.ResNet(bottleneck=True, stride_in_1x1=True, input_shape=(32, 32, 3), **TINY_RESNET)
    variables = numpy_variables(model, seed=2)
    flat = traverse_util.flatten_dict(variables)
    layers = {}
    for path, value in flat.items():
        top, *inner, leaf = path[1:]
        if top == "logits":
            layers.setdefault("predictions", {})[leaf] = np.asarray(value)
            continue
        if top.startswith("stem"):
            layer = {"stem_conv": "conv1_conv", "stem_bn": "conv1_bn"}[top]
        else:
            stage, block = int(top[5]), int(top[-1])
            part = inner[0]
            part = f"0_{part.split('_')[1]}" if part.startswith("downsample") else f"{part[-1]}_{part[:-1]}"
            layer = f"conv{stage + 1}_block{block}_{part}"
        keras_leaf = {"kernel": "kernel", "scale": "gamma", "bias": "beta", "mean": "moving_mean",
                      "var": "moving_variance"}[leaf]
        value = np.asarray(value)
        if keras_leaf == "moving_variance":
            value = value - np.float32(1.001e-5 - 1e-5)
        layers.setdefault(layer, {})[keras_leaf] = value
        if layer.endswith("_conv"):
            layers[layer]["bias"] = np.zeros(value.shape[-1], np.float32)
    write_keras_h5(tmp_path / "resnet.h5", layers)
    loaded = load_keras_weights(model, tmp_path / "resnet.h5")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), loaded, variables)


# ---------------------------------------------------------------- errors
def test_weights_of_another_architecture_are_refused_naming_key_and_shapes():
    vgg16 = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    state_dict = {f"features.{i}.weight": np.zeros((4, 3, 3, 3), np.float32) for i in (0,)}
    with pytest.raises(ValueError, match=r"weights lack 'features.0.bias', needed for params/block1_conv1/bias of shape \(4,\)"):
        load_torch_weights(vgg16, state_dict)
    state_dict["features.0.weight"] = np.zeros((8, 3, 3, 3), np.float32)
    state_dict["features.0.bias"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"'features.0.weight' has shape \(8, 3, 3, 3\).*needs shape \(3, 3, 3, 4\)"):
        load_torch_weights(vgg16, state_dict)


def test_extra_weights_and_unsupported_models_are_refused(tmp_path):
    pytest.importorskip("torch")
    net = randomize(torch_resnet((1, 1, 1, 1), 4, 5, bottleneck=False))
    deeper = models.ResNet(stage_sizes=(1, 1, 1, 1), width=4, num_classes=5, input_shape=(32, 32, 3))
    arrays = state_dict_arrays(net)
    arrays["layer1.1.conv1.weight"] = np.zeros((4, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"1 weights have no place in ResNet.*layer1.1.conv1.weight"):
        load_torch_weights(deeper, arrays)
    with pytest.raises(TypeError, match="PyTorch weights can be imported into VGG, AlexNet and ResNet"):
        load_torch_weights(models.create("lenet5"), arrays)
    with pytest.raises(ValueError, match="stride_in_1x1=True"):
        load_keras_weights(models.ResNet(bottleneck=True, **TINY_RESNET), tmp_path / "none.h5")


def test_pickles_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected a .npz or .safetensors file.*pickles"):
        read_arrays(tmp_path / "model.pth")
    np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        read_arrays(tmp_path / "objects.npz")


def test_keras1_weight_names_load(tmp_path):
    """keras.applications' vgg16_weights_tf_dim_ordering_tf_kernels.h5 layout (Keras 1)."""
    model = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    variables = numpy_variables(model, seed=2)
    path = tmp_path / "vgg16_keras1.h5"
    with h5py.File(path, "w") as f:
        names = [("predictions" if n == "logits" else n) for n in variables["params"]]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for name, params in zip(names, variables["params"].values()):
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            group.create_dataset(f"{name}_W_1:0", data=np.asarray(params["kernel"]))
            group.create_dataset(f"{name}_b_1:0", data=np.asarray(params["bias"]))
    jax.tree.map(np.testing.assert_array_equal, load_keras_weights(model, path), variables)


def write_keras3_weights(path, variables):
    """The layout Keras 3's `save_weights("x.weights.h5")` writes for a VGG (seen with Keras
    3.15 and keras.applications.VGG16): groups named by class and creation order, which
    h5py lists alphabetically ("conv2d_10" before "conv2d_2"), weights under vars/0, vars/1."""
    params = variables["params"]
    convs = [n for n in params if n.startswith("block")]
    denses = ["fc1", "fc2", "logits"]
    with h5py.File(path, "w") as f:
        layers = f.create_group("layers")
        f.create_group("vars")
        for kind, names in (("conv2d", convs), ("dense", denses)):
            for i, name in enumerate(names):
                weights = layers.create_group((kind if i == 0 else f"{kind}_{i}") + "/vars")
                weights.create_dataset("0", data=np.asarray(params[name]["kernel"]))
                weights.create_dataset("1", data=np.asarray(params[name]["bias"]))
        for name in ("flatten", "input_layer", "max_pooling2d"):
            layers.create_group(name).create_group("vars")


def test_keras3_weights_h5_loads_by_layer_order(tmp_path):
    model = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    variables = numpy_variables(model, seed=4)
    write_keras3_weights(tmp_path / "vgg16.weights.h5", variables)
    loaded = load_keras_weights(model, tmp_path / "vgg16.weights.h5")
    jax.tree.map(np.testing.assert_array_equal, loaded, variables)
    vgg19 = models.create("vgg19", input_shape=(32, 32, 3), **TINY_VGG)
    with pytest.raises(ValueError, match="holds 13 conv2d layers, but VGG-19 has 16"):
        load_keras_weights(vgg19, tmp_path / "vgg16.weights.h5")
