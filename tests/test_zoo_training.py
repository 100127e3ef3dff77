"""Every zoo model goes through `jaxcnn.train.train_step` under jit."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import models
from jaxcnn.train import TrainState, create_state, train_step
from test_zoo import small_input_shape
from zoo_utils import numpy_variables


def batch(shape, classes, size=2, abstract=False):
    if abstract:
        return {"image": jax.ShapeDtypeStruct((size, *shape), jnp.float32),
                "label": jax.ShapeDtypeStruct((size,), jnp.int32)}
    rng = np.random.default_rng(0)
    return {"image": jnp.asarray(rng.normal(size=(size, *shape)), jnp.float32),
            "label": jnp.asarray(rng.integers(0, classes, size), jnp.int32)}


@pytest.mark.parametrize("name", models.names())
def test_train_step_lowers_for_every_model(name):
    # Lowering traces forward, backward and update without compiling or allocating.
    shape = small_input_shape(name)
    model = models.create(name, num_classes=3, input_shape=shape)
    state = jax.eval_shape(lambda: create_state(model, optax.sgd(0.1, momentum=0.9), seed=0))
    lowered = jax.jit(train_step).lower(state, batch(shape, 3, abstract=True))
    new_state, metrics = lowered.out_info
    assert metrics["loss"].shape == () and jax.tree.structure(new_state) == jax.tree.structure(state)


@pytest.mark.parametrize("name,kwargs", [
    ("cnn4", {"input_shape": (46, 46, 3)}),  # dropout
    ("vgg11_bn", {"input_shape": (32, 32, 3), "widths": (4, 4, 8, 8, 8), "fc_width": 16}),
    ("resnet18_cifar", {"input_shape": (8, 8, 3), "width": 4, "stage_sizes": (1, 1, 1, 1)}),
])
def test_train_step_compiles_and_updates_every_variable(name, kwargs):
    model = models.create(name, num_classes=3, **kwargs)
    variables = numpy_variables(model)  # model.init would compile a random kernel per shape
    state = TrainState.create(apply_fn=model.apply, params=variables["params"],
                              tx=optax.sgd(0.05), batch_stats=variables.get("batch_stats", {}),
                              key=jax.random.key(0))
    new_state, metrics = jax.jit(train_step)(state, batch(model.input_shape, 3, size=4))
    assert np.isfinite(metrics["loss"]) and 0 <= metrics["accuracy"] <= 1
    # Every kernel, BatchNorm scale and running statistic moves (a conv bias right before a
    # BatchNorm has a zero gradient: the normalization removes it).
    unchanged = [jax.tree_util.keystr(path) for path, (a, b) in jax.tree_util.tree_leaves_with_path(
        jax.tree.map(lambda a, b: (a, b), new_state.variables(), state.variables()),
        is_leaf=lambda x: isinstance(x, tuple))
        if path[-1].key in ("kernel", "scale", "mean", "var") and np.array_equal(a, b)]
    assert not unchanged


def test_lenet5_state_from_create_state_learns():
    model = models.create("lenet5", num_classes=3)
    state = create_state(model, optax.sgd(0.05, momentum=0.9), seed=0)
    data = batch(model.input_shape, 3, size=8)
    step = jax.jit(train_step)
    state, first = step(state, data)
    for _ in range(5):
        state, metrics = step(state, data)
    assert metrics["loss"] < first["loss"]


@pytest.mark.parametrize("name", ["cnn4", "vgg11", "alexnet"])
def test_dropout_masks_do_not_depend_on_how_the_batch_is_split(name):
    """pmap parity needs each example's dropout mask to depend on its global row only."""
    shape = {"cnn4": (16, 16, 3), "vgg11": (32, 32, 3), "alexnet": (63, 63, 3)}[name]
    kwargs = {"cnn4": {"padding": "SAME"}, "vgg11": {"widths": (4, 4, 4, 4, 4), "fc_width": 8},
              "alexnet": {"fc_width": 8}}[name]
    model = models.create(name, num_classes=3, input_shape=shape, **kwargs)
    x = jax.random.uniform(jax.random.key(0), (4, *shape))
    variables = numpy_variables(model)
    rngs = {"dropout": jax.random.key(2)}
    whole = jax.jit(lambda v, xs: model.apply(v, xs, train=True, rngs=rngs))(variables, x)
    split = model.clone(axis_name="batch")
    per_device = jax.jit(jax.vmap(lambda v, xs: split.apply(v, xs, train=True, rngs=rngs),
                                  in_axes=(None, 0), axis_name="batch"))
    out = per_device(variables, x.reshape(2, 2, *shape))
    np.testing.assert_allclose(out.reshape(whole.shape), whole, rtol=1e-5, atol=1e-6)
