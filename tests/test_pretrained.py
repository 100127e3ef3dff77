"""models.create(name, weights=...): init returns the weights' variables, fit starts from them;
"imagenet" and WeightsSource files come through a loopback mirror, checked; preprocessing."""
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from loopback import QuietHandler, serve_folder
from flax import traverse_util
from safetensors.numpy import save_file
from test_convert import TINY_RESNET, TINY_VGG, numpy_variables, write_keras_h5

import jaxcnn
from jaxcnn import cli, data, models, train
from jaxcnn.models import convert
from jaxcnn.models.preprocessing import preprocess


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A Keras HDF5 weights file for a tiny VGG-16, and the variables it holds."""
    model = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    variables = numpy_variables(model, seed=3)
    layers = {("predictions" if name == "logits" else name): {k: np.asarray(v) for k, v in p.items()}
              for name, p in variables["params"].items()}
    path = tmp_path_factory.mktemp("weights") / "vgg16.h5"
    write_keras_h5(path, layers)
    return path, variables


def test_init_of_a_model_with_weights_returns_them(keras_file):
    path, expected = keras_file
    model = models.create("vgg16", input_shape=(32, 32, 3), weights=path, **TINY_VGG)
    assert model.weights == str(path) and hash(model)  # a plain, hashable Flax module
    for key in (0, 1):
        got = model.init(jax.random.key(key), jnp.zeros((1, 32, 32, 3)))
        jax.tree.map(np.testing.assert_array_equal, got, expected)
    jax.tree.map(np.testing.assert_array_equal, models.load_weights(model, path), expected)
    random = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    assert not np.array_equal(random.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
                              ["params"]["block1_conv1"]["kernel"],
                              expected["params"]["block1_conv1"]["kernel"])


def test_fit_and_create_state_start_from_the_weights(keras_file):
    path, expected = keras_file
    model = models.create("vgg16", input_shape=(32, 32, 3), weights=path, **TINY_VGG)
    state = train.create_state(model, optax.sgd(0.0), seed=0)
    jax.tree.map(np.testing.assert_array_equal, state.variables(), expected)
    rng = np.random.default_rng(0)
    images = data.from_arrays(rng.uniform(size=(8, 32, 32, 3)).astype(np.float32),
                              np.arange(8) % 5, num_classes=5)
    trained, _ = jaxcnn.fit(model, images, epochs=1, batch_size=8, optimizer="sgd",
                            learning_rate=1e-9, progress=False)
    np.testing.assert_allclose(trained.params["logits"]["kernel"],
                               expected["params"]["logits"]["kernel"], atol=1e-6)


def test_bad_weights_are_refused(tmp_path, keras_file):
    with pytest.raises(ValueError, match=r"weights must be None, 'imagenet', a WeightsSource or "
                                         r"the path of a weights file.*'imagnet' \(no such file\)"):
        models.create("vgg16", weights="imagnet")
    with pytest.raises(ValueError, match="vgg13 has no official ImageNet weights in jaxcnn; "
                                         "weights='imagenet' works for resnet18, resnet50, vgg11, vgg16, vgg19"):
        models.create("vgg13", weights="imagenet")
    with pytest.raises(ValueError, match="resnet50: these weights need stride_in_1x1=True"):
        models.create("resnet50", weights="imagenet", stride_in_1x1=False)  # before any download
    with pytest.raises(ValueError, match="lenet5 takes no weights file; weights= works for "
                                         "alexnet, resnet18"):
        models.create("lenet5", weights=keras_file[0])
    (tmp_path / "model.pth").write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"expected \.h5 / \.weights\.h5 \(Keras\).*pickles"):
        models.load_weights(models.create("vgg16", **TINY_VGG), tmp_path / "model.pth")
    with pytest.raises(ValueError, match="does not exist"):
        models.load_weights(models.create("vgg16", **TINY_VGG), tmp_path / "none.h5")
    other = models.create("vgg16", input_shape=(32, 32, 3), weights=keras_file[0],
                          **{**TINY_VGG, "num_classes": 7})
    with pytest.raises(ValueError, match="another architecture or number of classes"):
        models.load_weights(other, keras_file[0])  # without a key for a new classifier


def test_train_refuses_a_missing_weights_file(tmp_path, capsys):
    assert cli.main(["train", "--model", "vgg11", "--weights", str(tmp_path / "no.h5"),
                            "--workdir", str(tmp_path / "run")]) == 2
    assert "weights must be None, 'imagenet', a WeightsSource or the path" in capsys.readouterr().err


# ------------------------------------------------- weights="imagenet" and WeightsSource
def caffe_reference(images):
    """keras.applications' caffe preprocessing in NumPy: 0-255 scale, BGR, ImageNet mean off."""
    return images[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)


@pytest.fixture()
def mirror(tmp_path, monkeypatch, keras_file):
    """A loopback mirror serving the tiny VGG-16 file under two names, and a fresh cache."""
    served = tmp_path / "served"
    served.mkdir()
    content = keras_file[0].read_bytes()
    for name in ("vgg16_tiny.h5", "vgg16_weights_tf_dim_ordering_tf_kernels.h5"):
        (served / name).write_bytes(content)
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    with serve_folder(served) as url:
        monkeypatch.setenv("JAXCNN_WEIGHTS_MIRROR", url)
        yield "sha256:" + hashlib.sha256(content).hexdigest(), tmp_path / "cache" / "weights"


def test_a_weights_source_loads_through_the_mirror_like_the_file(mirror, keras_file):
    sha256, cache = mirror
    source = models.WeightsSource("https://example.org/v1/vgg16_tiny.h5", sha256, "caffe")
    model = models.create("vgg16", input_shape=(32, 32, 3), weights=source, **TINY_VGG)
    assert model.weights == str(cache / "vgg16_tiny.h5") and model.preprocessing == "caffe"
    assert QuietHandler.requests == ["/vgg16_tiny.h5"]
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    jax.tree.map(np.testing.assert_array_equal, variables, keras_file[1])
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    plain = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)  # no preprocessing
    np.testing.assert_allclose(model.apply(variables, images),
                               plain.apply(keras_file[1], caffe_reference(images)),
                               rtol=1e-5, atol=1e-4)
    models.create("vgg16", input_shape=(32, 32, 3), weights=source, **TINY_VGG)
    assert len(QuietHandler.requests) == 1  # the second model reads the cache


def test_imagenet_weights_are_checked_against_the_published_hash(mirror):
    with pytest.raises(ValueError, match=r"http://127\.0\.0\.1:\d+/vgg16_weights_tf_dim_ordering_"
                                         r"tf_kernels\.h5: the downloaded file is not the "
                                         r"published one.*64373286793e3c8b2b4e3219cbf3544b"):
        models.create("vgg16", weights="imagenet")
    with pytest.raises(ValueError, match=r"/vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        models.create("vgg16", weights="imagenet", include_top=False)  # the _notop file
    assert not mirror[1].exists() or not list(mirror[1].iterdir())  # nothing half-written left


def test_preprocessing_matches_keras_and_torchvision_by_hand():
    red = np.zeros((1, 1, 1, 3), np.float32)
    red[..., 0] = 1.0  # pure red: BGR (0, 0, 255) minus the BGR mean
    np.testing.assert_allclose(preprocess(red, "caffe")[0, 0, 0], [-103.939, -116.779, 131.32],
                               rtol=1e-6)
    gray = np.full((1, 1, 1, 3), 0.5, np.float32)
    np.testing.assert_allclose(preprocess(gray, "torch")[0, 0, 0],
                               [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225],
                               rtol=1e-6)
    assert preprocess(gray.astype(jnp.bfloat16), "torch").dtype == jnp.bfloat16
    assert preprocess(gray, None) is gray
    with pytest.raises(ValueError, match="for RGB images"):
        preprocess(np.zeros((1, 4, 4, 1), np.float32), "caffe")
    with pytest.raises(ValueError, match="preprocessing must be None or one of 'caffe', 'torch'"):
        models.create("vgg16", preprocessing="bgr")


def test_a_local_file_brings_its_preprocessing_unless_told_otherwise(keras_file, tmp_path):
    path = keras_file[0]
    assert models.create("vgg16", weights=path, **TINY_VGG).preprocessing == "caffe"
    assert models.create("vgg16", weights=path, preprocessing=None,
                         **TINY_VGG).preprocessing is None
    np.savez(tmp_path / "w.npz", x=np.zeros(1))
    assert models.create("vgg16", weights=tmp_path / "w.npz", **TINY_VGG).preprocessing == "torch"


def test_decode_predictions_names_the_top_imagenet_classes():
    classes = models.imagenet_classes()
    assert len(classes) == len({wnid for wnid, _ in classes}) == 1000
    assert classes[0] == ("n01440764", "tench") and classes[281] == ("n02123045", "tabby")
    logits = np.random.default_rng(0).normal(size=(3, 1000))
    decoded = models.decode_predictions(logits, top=3)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for row, p in zip(decoded, probs):
        best = np.argsort(-p)[:3]
        assert [name for _, name, _ in row] == [classes[i][1] for i in best]
        np.testing.assert_allclose([q for *_, q in row], p[best], rtol=1e-9)
    with pytest.raises(ValueError, match=r"logits of shape \(batch, 1000\)"):
        models.decode_predictions(np.zeros((2, 10)))


def test_summary_shows_the_preprocessing_without_reading_the_weights(keras_file, tmp_path):
    model = models.create("vgg16", input_shape=(32, 32, 3), weights=keras_file[0], **TINY_VGG)
    text = str(jaxcnn.summary(model))
    assert "Input preprocessing: caffe (RGB->BGR, x255, minus the ImageNet mean" in text
    assert "preprocessing" not in str(jaxcnn.summary(models.create("vgg16", **TINY_VGG)))
    moved = tmp_path / "moved.h5"
    moved.write_bytes(keras_file[0].read_bytes())
    model = models.create("vgg16", input_shape=(32, 32, 3), weights=moved, **TINY_VGG)
    moved.unlink()  # the summary does not need the file
    assert jaxcnn.summary(model).totals["params"] > 0


# ------------------------------------------------------------------- transfer learning
def test_another_class_count_gets_a_new_head_from_the_init_key(keras_file):
    path, expected = keras_file
    model = models.create("vgg16", input_shape=(32, 32, 3), weights=path,
                          **{**TINY_VGG, "num_classes": 2})
    x = jnp.zeros((1, 32, 32, 3))
    with pytest.warns(UserWarning, match=r"classifier \('predictions/kernel', shape \(32, 5\)\) "
                                         r"does not fit num_classes=2; it was left out"):
        got = model.init(jax.random.key(1), x)
    for layer, params in expected["params"].items():
        if layer != "logits":
            jax.tree.map(np.testing.assert_array_equal, got["params"][layer], params)
    random = model.clone(weights=None).init(jax.random.key(1), x)["params"]["logits"]
    jax.tree.map(np.testing.assert_array_equal, got["params"]["logits"], random)
    assert got["params"]["logits"]["kernel"].shape == (32, 2)
    with pytest.warns(UserWarning):
        other = model.init(jax.random.key(2), x)["params"]["logits"]["kernel"]
    assert not np.array_equal(other, got["params"]["logits"]["kernel"])


@pytest.mark.parametrize("pooling, shape", [(None, (2, 1, 1, 16)), ("avg", (2, 16)),
                                            ("max", (2, 16))])
def test_the_convolutional_base_alone_loads_from_a_file_with_or_without_top(
        keras_file, tmp_path, pooling, shape):
    path, expected = keras_file
    base = models.create("vgg16", input_shape=(32, 32, 3), weights=path, include_top=False,
                         pooling=pooling, **TINY_VGG)
    variables = base.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    assert set(variables["params"]) == {n for n in expected["params"] if n.startswith("block")}
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    features = base.apply(variables, images)
    assert features.shape == shape
    full = models.create("vgg16", input_shape=(32, 32, 3), weights=path, **TINY_VGG)
    _, acts = full.apply(expected, images, capture_activations=True)
    reference = {None: acts["block5_pool"], "avg": acts["block5_pool"].mean(axis=(1, 2)),
                 "max": acts["block5_pool"].max(axis=(1, 2))}[pooling]
    np.testing.assert_allclose(features, reference, rtol=1e-6)
    notop = {name: {k: np.asarray(v) for k, v in p.items()}
             for name, p in expected["params"].items() if name.startswith("block")}
    write_keras_h5(tmp_path / "notop.h5", notop)  # the layout of Keras' _notop files
    jax.tree.map(np.testing.assert_array_equal,
                 models.load_weights(base, tmp_path / "notop.h5"), variables)
    with pytest.raises(ValueError, match="weights lack 'fc1/bias'"):
        models.load_weights(full, tmp_path / "notop.h5")


def test_pooling_needs_include_top_false_and_a_large_enough_input():
    with pytest.raises(ValueError, match="pooling='avg' applies to the convolutional base alone; "
                                         "pass include_top=False"):
        models.create("vgg16", pooling="avg")
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max', got 'mean'"):
        models.create("resnet18", include_top=False, pooling="mean")
    base = models.create("vgg16", include_top=False, **TINY_VGG)
    with pytest.raises(ValueError, match="at least 32x32 pixels"):
        base.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))


def torch_named(model, variables):
    """A model's variables under torchvision's names and layouts (the loader's own naming,
    checked against torch itself in test_convert): OIHW kernels, (out, in) Linear, VGG's
    fc1 rows in (C, H, W) order."""
    flat = traverse_util.flatten_dict(variables)
    rules = convert._torch_rules(model, list(flat))
    named = {}
    for path, value in flat.items():
        value = np.asarray(value)
        if path[1:] == ("fc1", "kernel"):  # rows (H, W, C) here, (C, H, W) in torchvision
            channels = model.widths[-1]
            value = (value.reshape(7, 7, channels, -1).transpose(2, 0, 1, 3)
                     .reshape(channels * 49, -1))
        if value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)
        elif value.ndim == 2:
            value = value.T
        named[rules[path][0][0]] = np.ascontiguousarray(value)
    return named


def test_hub_weights_get_a_name_of_their_own_in_cache_and_mirror(tmp_path, monkeypatch):
    """The Hub calls every file model.safetensors: resnet18's is fetched and cached under
    its own name, checked against its sha256; a WeightsSource can do the same."""
    model = models.create("resnet18", **TINY_RESNET, input_shape=(32, 32, 3))
    variables = numpy_variables(model, seed=4)
    state_dict = torch_named(model, variables)
    served = tmp_path / "served"
    served.mkdir()
    save_file(state_dict, served / "tiny.tv_in1k.safetensors")
    (served / "resnet18.tv_in1k.safetensors").write_bytes(b"not the published file")
    digest = hashlib.sha256((served / "tiny.tv_in1k.safetensors").read_bytes()).hexdigest()
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    with serve_folder(served) as url:
        monkeypatch.setenv("JAXCNN_WEIGHTS_MIRROR", url)
        with pytest.raises(ValueError, match=r"/resnet18\.tv_in1k\.safetensors: the downloaded "
                                             r"file is not the published one.*694f673df652"):
            models.create("resnet18", weights="imagenet")
        source = models.WeightsSource("https://huggingface.co/x/tiny/resolve/abc/model.safetensors",
                                      f"sha256:{digest}", "torch",
                                      file_name="tiny.tv_in1k.safetensors")
        pretrained = models.create("resnet18", **TINY_RESNET, input_shape=(32, 32, 3),
                                   weights=source)
    assert pretrained.preprocessing == "torch"
    assert pretrained.weights == str(tmp_path / "cache" / "weights" / "tiny.tv_in1k.safetensors")
    got = pretrained.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    jax.tree.map(np.testing.assert_array_equal, got, variables)


def test_timm_vgg_layout_loads_like_torchvision(keras_file):
    """timm's VGG files (torchvision's weights, fc1/fc2 as 7x7/1x1 convolutions) load."""
    model = models.create("vgg16", input_shape=(32, 32, 3), **TINY_VGG)
    variables = keras_file[1]
    named = {}
    for key, value in torch_named(model, variables).items():
        for torchvision, timm in (("classifier.0.", "pre_logits.fc1."),
                                  ("classifier.3.", "pre_logits.fc2."), ("classifier.6.", "head.fc.")):
            if key.startswith(torchvision):
                key = timm + key[len(torchvision):]
                if key == "pre_logits.fc1.weight":  # timm's _filter_fn: (out, C, 7, 7)
                    value = value.reshape(value.shape[0], TINY_VGG["widths"][-1], 7, 7)
                elif key == "pre_logits.fc2.weight":
                    value = value.reshape(*value.shape, 1, 1)
        named[key] = value
    assert "pre_logits.fc1.weight" in named and "head.fc.bias" in named
    jax.tree.map(np.testing.assert_array_equal, models.load_weights(model, named), variables)
