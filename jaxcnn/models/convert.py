"""Import weights trained in PyTorch (torchvision) or Keras (keras.applications).

Contract:
  * `load_torch_weights(model, source)` takes a `state_dict` saved as `.npz`,
    `.safetensors` or given as a dict of NumPy arrays, with torchvision's names (or timm's,
    for VGG), for `VGG` (with or without BatchNorm), `AlexNet` and `ResNet` models.
  * `load_keras_weights(model, path)` reads a Keras HDF5 weights file (`save_weights` /
    the keras.applications downloads, layer groups holding `kernel:0`, `bias:0`, ..., or
    Keras 1's `<layer>_W_1:0`) for VGG-16/19 and ResNet-50 (built with
    `stride_in_1x1=True`, Keras' block layout), and Keras 3 `.weights.h5` files of both
    (by layer order, as Keras loads them: `keras3.py`).
  * `load_weights(model, source)` picks one of the two by the file type.
  * All return `{"params": ..., "batch_stats": ...}` for `model.apply`. Layouts are
    converted at the edge: OIHW -> HWIO, Linear (out, in) -> (in, out), the NCHW flatten
    order of the first dense layer -> NHWC, Keras conv biases folded into the following
    BatchNorm. Every model variable must be found with its exact shape and every file
    entry used, otherwise a ValueError names the key and both shapes.
  * Files are read with `np.load(allow_pickle=False)`, safetensors and h5py: loading
    never executes code from the file.
"""
from __future__ import annotations

import os
import re
import warnings
from typing import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxcnn.models.alexnet import CONVS as ALEXNET_CONVS
from jaxcnn.models.alexnet import POOLED_SIZE as ALEXNET_POOLED
from jaxcnn.models.alexnet import AlexNet
from jaxcnn.models.keras3 import is_keras3, read_keras3
from jaxcnn.models.resnet import ResNet
from jaxcnn.models.vgg import CONVS_PER_BLOCK, POOLED_SIZE as VGG_POOLED
from jaxcnn.models.vgg import VGG

# A target variable path such as ("params", "stage1_block1", "conv1", "kernel").
Path = tuple[str, ...]
# For one target variable: the source keys it is built from and how.
Rule = tuple[tuple[str, ...], Callable[..., np.ndarray]]

KERAS_RESNET_EPSILON = 1.001e-5  # keras.applications.resnet BatchNorm epsilon
TORCH_LEAF = {"kernel": "weight", "bias": "bias", "scale": "weight", "mean": "running_mean",
              "var": "running_var"}
IGNORED_TORCH_KEYS = ("num_batches_tracked",)  # a counter, not a weight


def read_arrays(source: str | os.PathLike | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reads a flat {name: array} dict from `.npz`, `.safetensors` or a mapping, without pickle.

    Args:
      source: a path to a `.npz` / `.safetensors` file, or a mapping of arrays.

    Returns:
      {name: NumPy array}.

    Raises:
      ValueError: for another file type.
    """
    if isinstance(source, Mapping):
        return {k: np.asarray(v) for k, v in source.items()}
    path = os.fspath(source)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file
        return load_file(path)
    raise ValueError(f"weights file {path!r}: expected a .npz or .safetensors file (PyTorch "
                     "pickles such as .pt/.pth are refused: save the state_dict with "
                     "safetensors.torch.save_file or numpy.savez instead).")


def read_keras_h5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a Keras HDF5 weights file into {"layer/weight": array} (":0" suffixes dropped).

    Args:
      path: a file written by Keras `save_weights(...h5)` or `save(...h5)`.

    Returns:
      {"block1_conv1/kernel": array, ...}.
    """
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer in root.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            group = root[layer]
            for weight in group.attrs["weight_names"]:
                weight = weight.decode() if isinstance(weight, bytes) else weight
                leaf = _keras_leaf(layer, weight.split("/")[-1].split(":")[0])
                arrays[f"{layer}/{leaf}"] = np.asarray(group[weight])
    return arrays


# Keras 1 named a layer's weights "<layer>_W_1", "<layer>_b_1", ... (the files that
# keras.applications still downloads for VGG16/VGG19); later Keras names them "kernel",
# "bias", ... Keras 1's "running_std" held the variance.
_KERAS1_LEAVES = {"W": "kernel", "b": "bias", "gamma": "gamma", "beta": "beta",
                  "running_mean": "moving_mean", "running_std": "moving_variance"}


def _keras_leaf(layer: str, leaf: str) -> str:
    """The Keras 2 name of a weight: Keras 1's "<layer>_W_1" -> "kernel"; others kept."""
    match = re.fullmatch(rf"{re.escape(layer)}_({'|'.join(_KERAS1_LEAVES)})(_\d+)?", leaf)
    return _KERAS1_LEAVES[match.group(1)] if match else leaf


def _oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0) if w.ndim == 4 else w


def _linear(w: np.ndarray) -> np.ndarray:
    return w.T if w.ndim == 2 else w


def _chw_rows_to_hwc(channels: int, size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Reorders a torch Linear weight that follows a flatten of (C, H, W) to our (H, W, C)."""
    def convert(w):
        w = _linear(w)
        if w.ndim != 2 or w.shape[0] != channels * size * size:
            return w  # wrong shape: reported by the shape check
        return (w.reshape(channels, size, size, -1).transpose(1, 2, 0, 3)
                .reshape(channels * size * size, -1))
    return convert


def _torch_module_names(model: nn.Module) -> dict[str, str]:
    """Our top-level module name -> torchvision's module prefix, for VGG and AlexNet."""
    if isinstance(model, AlexNet):
        names = {name: f"features.{i}" for (name, *_), i in zip(ALEXNET_CONVS, (0, 3, 6, 8, 10))}
        return {**names, "fc1": "classifier.1", "fc2": "classifier.4", "logits": "classifier.6"}
    names, index = {}, 0
    for b, convs in enumerate(CONVS_PER_BLOCK[model.depth], start=1):
        for i in range(1, convs + 1):
            names[f"block{b}_conv{i}"] = f"features.{index}"
            if model.batch_norm:
                names[f"block{b}_conv{i}_bn"] = f"features.{index + 1}"
            index += 3 if model.batch_norm else 2  # conv, [bn,] relu
        index += 1  # max pool
    return {**names, "fc1": "classifier.0", "fc2": "classifier.3", "logits": "classifier.6"}


def _torch_resnet_prefix(modules: tuple[str, ...]) -> str:
    top = {"stem_conv": "conv1", "stem_bn": "bn1", "logits": "fc"}
    if modules[0] in top:
        return top[modules[0]]
    stage, block = re.fullmatch(r"stage(\d+)_block(\d+)", modules[0]).groups()
    inner = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
    return f"layer{stage}.{int(block) - 1}.{inner.get(modules[1], modules[1])}"


def _torch_rules(model: nn.Module, paths: list[Path]) -> dict[Path, Rule]:
    if isinstance(model, ResNet):
        return {p: ((f"{_torch_resnet_prefix(p[1:-1])}.{TORCH_LEAF[p[-1]]}",),
                    _linear if p[1] == "logits" else _oihw_to_hwio)
                for p in paths}
    if isinstance(model, AlexNet):
        first_dense = _chw_rows_to_hwc(ALEXNET_CONVS[-1][1], ALEXNET_POOLED)
    elif isinstance(model, VGG):
        first_dense = _chw_rows_to_hwc(model.widths[-1], VGG_POOLED)
    else:
        raise TypeError(f"no torchvision naming for {type(model).__name__}; PyTorch weights "
                        "can be imported into VGG, AlexNet and ResNet models.")
    names = _torch_module_names(model)
    rules = {}
    for p in paths:
        module, leaf = p[1], p[-1]
        convert = _oihw_to_hwio if module not in ("fc1", "fc2", "logits") else _linear
        if module == "fc1" and leaf == "kernel":
            convert = first_dense
        rules[p] = ((f"{names.get(module, module)}.{TORCH_LEAF[leaf]}",), convert)
    return rules


def _keras_rules(model: nn.Module, paths: list[Path]) -> dict[Path, Rule]:
    if isinstance(model, VGG) and not model.batch_norm:
        return {p: ((f"{'predictions' if p[1] == 'logits' else p[1]}/{p[-1]}",), np.asarray)
                for p in paths}
    if isinstance(model, ResNet) and model.bottleneck:
        if not model.stride_in_1x1:
            raise ValueError("Keras' ResNet-50 strides its first 1x1 convolution; build the "
                             "model with stride_in_1x1=True, e.g. jaxcnn.models.create("
                             "'resnet50', stride_in_1x1=True), before loading its weights.")
        return {p: _keras_resnet_rule(p) for p in paths}
    raise TypeError(f"no keras.applications naming for {type(model).__name__}; Keras weights "
                    "can be imported into VGG-16/19 and ResNet-50.")


def _keras_resnet_layer(modules: tuple[str, ...]) -> str:
    top = {"stem_conv": "conv1_conv", "stem_bn": "conv1_bn", "logits": "predictions"}
    if modules[0] in top:
        return top[modules[0]]
    stage, block = re.fullmatch(r"stage(\d+)_block(\d+)", modules[0]).groups()
    inner = modules[1]  # conv1..3 / bn1..3, or downsample_conv / downsample_bn (Keras' "_0_")
    if inner.startswith("downsample"):
        kind, index = inner.split("_")[1], "0"
    else:
        kind, index = inner[:-1], inner[-1]
    return f"conv{int(stage) + 1}_block{block}_{index}_{kind}"


def _keras_resnet_rule(path: Path) -> Rule:
    layer = _keras_resnet_layer(path[1:-1])
    leaf = path[-1]
    if layer.endswith("_bn"):
        conv = layer[:-2] + "conv"
        if leaf == "mean":  # BN(conv + b) == BN with mean - b and no conv bias
            return (f"{layer}/moving_mean", f"{conv}/bias"), lambda mean, bias: mean - bias
        if leaf == "var":  # same normalization with our epsilon
            return ((f"{layer}/moving_variance",),
                    lambda var: var + np.float32(KERAS_RESNET_EPSILON - 1e-5))
        return (f"{layer}/{'gamma' if leaf == 'scale' else 'beta'}",), np.asarray
    return (f"{layer}/{leaf}",), np.asarray


HEAD = "logits"  # the classifier module of every zoo model ("predictions" in Keras)
# File keys of the layers that include_top=False leaves out, per naming.
_TOP_KEYS = {"keras": ("fc1/", "fc2/", "predictions/"), "torch": ("classifier.", "fc.")}


def _assemble(model: nn.Module, read: Callable[[], Mapping[str, np.ndarray]], rules_fn,
              naming: str, key: jax.Array | None = None, ignored=()) -> dict:
    """Builds the model's variables from `read()` following `rules_fn(model, paths)`.

    A file classifier whose shape does not fit the model (another number of classes) is an
    error, unless `key` is given: then it is left out, a new one is initialized from `key`
    (as `model.init(key, ...)` would), and a warning says so.
    """
    if getattr(model, "weights", None) is not None:
        model = model.clone(weights=None)  # its init would read the file again
    shape = (1, *model.input_shape)
    targets = traverse_util.flatten_dict(
        jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32)))
    rules = rules_fn(model, list(targets))  # refuses an unsupported model before reading
    arrays = read()
    if not model.include_top:
        ignored_prefixes = _TOP_KEYS[naming]
        arrays = {k: v for k, v in arrays.items() if not k.startswith(ignored_prefixes)}
    used, values, other_head = set(), {}, None
    for path, target in targets.items():
        keys, convert = rules[path]
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise ValueError(f"weights lack {missing[0]!r}, needed for {'/'.join(path)} of shape "
                             f"{tuple(target.shape)}; are they for another architecture?")
        used.update(keys)
        value = np.asarray(convert(*(arrays[k] for k in keys)), np.float32)
        if value.shape != tuple(target.shape):
            if key is not None and path[1] == HEAD:
                other_head = (keys[0], arrays[keys[0]].shape)
                continue
            raise ValueError(
                f"weight {keys[0]!r} has shape {tuple(arrays[keys[0]].shape)} (converted: "
                f"{value.shape}) but {'/'.join(path)} needs shape {tuple(target.shape)}; "
                f"the weights belong to another architecture or number of classes.")
        values[path] = jnp.asarray(value, target.dtype)
    unused = sorted(k for k in arrays if k not in used and not k.endswith(ignored))
    if unused:
        raise ValueError(f"{len(unused)} weights have no place in {type(model).__name__}, e.g. "
                         f"{unused[:3]}; are they for another architecture or depth?")
    if other_head is not None:
        values = {p: v for p, v in values.items() if p[1] != HEAD}
        values.update(_new_head(model, key))
        warnings.warn(f"{type(model).__name__}: the weights' classifier ({other_head[0]!r}, "
                      f"shape {other_head[1]}) does not fit num_classes={model.num_classes}; "
                      f"it was left out and a new {HEAD!r} layer initialized from the init key.",
                      stacklevel=3)
    return traverse_util.unflatten_dict(values)


def _new_head(model: nn.Module, key: jax.Array) -> dict[Path, jax.Array]:
    """The classifier variables `model.init(key, ...)` gives, without the other layers' cost:
    compiled, XLA drops every computation the head does not need."""
    x = jnp.zeros((1, *model.input_shape), jnp.float32)
    head = jax.jit(lambda k: model.init(k, x)["params"][HEAD])(key)
    return {("params", HEAD, leaf): value for leaf, value in head.items()}


def load_torch_weights(model: nn.Module, source, key: jax.Array | None = None) -> dict:
    """Converts a torchvision-named PyTorch `state_dict` into variables of `model`.

    Args:
      model: a `VGG`, `AlexNet` or `ResNet` built with the same depth, widths and classes.
      source: `.npz` / `.safetensors` path or dict of NumPy arrays (e.g.
        `{k: v.numpy() for k, v in torch_model.state_dict().items()}`).
      key: where the file's classifier does not fit `model.num_classes`, a new one is
        initialized from this key (and a warning says so); None: such a file is refused.

    Returns:
      {"params": ..., "batch_stats": ...} (no batch_stats for models without BatchNorm).

    Raises:
      TypeError: for a model family without torchvision naming.
      ValueError: for a missing, unused or wrongly shaped weight, naming the key.
    """
    return _assemble(model, lambda: from_timm_vgg(read_arrays(source)), _torch_rules, "torch",
                     key, IGNORED_TORCH_KEYS)


# timm publishes torchvision's VGG weights with its own classifier: fc1 and fc2 as 7x7 and
# 1x1 convolutions ("pre_logits.fc1", "pre_logits.fc2") and "head.fc" (timm's vgg.py
# `_filter_fn` is the inverse of this).
_TIMM_VGG = {"pre_logits.fc1.": "classifier.0.", "pre_logits.fc2.": "classifier.3.",
             "head.fc.": "classifier.6."}


def from_timm_vgg(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torchvision's names for a state_dict of timm's VGG layout; other dicts unchanged.

    The convolution kernels of fc1/fc2, (out, C, 7, 7) and (out, in, 1, 1), become the
    (out, C*7*7) and (out, in) Linear weights they equal (same C, H, W order).
    """
    if not any(k.startswith("pre_logits.") for k in arrays):
        return arrays
    renamed = {}
    for k, v in arrays.items():
        for timm, torchvision in _TIMM_VGG.items():
            if k.startswith(timm):
                k = torchvision + k[len(timm):]
                v = v.reshape(v.shape[0], -1) if v.ndim == 4 else v
        renamed[k] = v
    return renamed


def load_keras_weights(model: nn.Module, path: str | os.PathLike,
                       key: jax.Array | None = None) -> dict:
    """Converts a keras.applications HDF5 weights file into variables of `model`.

    Args:
      model: a `VGG` without BatchNorm (VGG-16/19) or a bottleneck `ResNet` (ResNet-50)
        with `stride_in_1x1=True`.
      path: the `.h5` file.
      key: where the file's classifier does not fit `model.num_classes`, a new one is
        initialized from this key (and a warning says so); None: such a file is refused.

    Returns:
      {"params": ..., "batch_stats": ...}.

    Raises:
      TypeError: for a model family without keras.applications naming.
      ValueError: for a missing, unused or wrongly shaped weight, naming the key.
    """
    if is_keras3(path):
        return _assemble(model, lambda: read_keras3(model, path), _keras_rules, "keras", key)
    return _assemble(model, lambda: read_keras_h5(path), _keras_rules, "keras", key)


WEIGHT_FILES = (".h5 / .weights.h5 (Keras)", ".safetensors or .npz (torchvision names)")


def load_weights(model: nn.Module, source, key: jax.Array | None = None) -> dict:
    """Reads a weights file for `model`: Keras `.h5`, or torchvision-named `.safetensors` /
    `.npz` (or a mapping of arrays with those names).

    Args:
      model: a `VGG`, `AlexNet` or `ResNet` (its own `weights` field is not used).
      source: a file path or a mapping of arrays.
      key: where the file's classifier does not fit `model.num_classes`, a new one is
        initialized from this key (and a warning says so); None: such a file is refused.

    Returns:
      {"params": ..., "batch_stats": ...}.

    Raises:
      ValueError: a missing file, another file type, or weights of another architecture.
    """
    if getattr(model, "weights", None) is not None:
        model = model.clone(weights=None)  # the converters call model.init for the shapes
    if isinstance(source, Mapping):
        return load_torch_weights(model, source, key)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist; pass the path of a "
                         f"{' or '.join(WEIGHT_FILES)} file.")
    if path.endswith(".h5"):
        return load_keras_weights(model, path, key)
    if path.endswith((".safetensors", ".npz")):
        return load_torch_weights(model, path, key)
    raise ValueError(f"weights file {path!r}: expected {' or '.join(WEIGHT_FILES)}; PyTorch "
                     "pickles (.pt/.pth) are refused because loading them can run code.")

