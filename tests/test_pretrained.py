"""models.create(name, weights=FILE): init returns the file's variables, fit starts from them."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_convert import TINY_VGG, numpy_variables, write_keras_h5

import jaxcnn
from jaxcnn import cli, data, models, train


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
    with pytest.raises(ValueError, match=r"weights must be None or the path of a weights file.*"
                                         r"'imagenet' \(no such file\)"):
        models.create("vgg16", weights="imagenet")
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
        other.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_train_refuses_a_missing_weights_file(tmp_path, capsys):
    assert cli.main(["train", "--model", "vgg11", "--weights", str(tmp_path / "no.h5"),
                            "--workdir", str(tmp_path / "run")]) == 2
    assert "weights must be None or the path of a weights file" in capsys.readouterr().err
