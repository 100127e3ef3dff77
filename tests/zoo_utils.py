"""Test helper: random model variables filled with NumPy.

`model.init` compiles one random-number kernel per parameter shape, which costs seconds
per model on XLA:CPU; tests that only need *some* weights draw them here instead, from
the shapes that `jax.eval_shape(model.init, ...)` reports.
"""
import jax
import jax.numpy as jnp
import numpy as np


def numpy_variables(model, input_shape=None, seed=0):
    """Variables of `model` with fan-in scaled normal kernels and non-trivial BatchNorm stats."""
    rng = np.random.default_rng(seed)
    x = jax.ShapeDtypeStruct((1, *(input_shape or model.input_shape)), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path[-1:])
        noise = rng.normal(size=leaf.shape).astype(np.float32)
        if "kernel" in name:
            return jnp.asarray(noise / np.sqrt(np.prod(leaf.shape[:-1])))
        if "var" in name:
            return jnp.asarray(np.abs(noise) * 0.3 + 0.5)
        if "scale" in name:
            return jnp.asarray(1.0 + 0.1 * noise)
        return jnp.asarray(0.1 * noise)

    return jax.tree_util.tree_map_with_path(fill, shapes)


class DelegatingDataset:
    """A dataset that hands every attribute to `dataset`; subclasses change `batches` to
    stand for what happens around a real dataset (a slow disk, a user's Ctrl-C)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def __len__(self):
        return len(self.dataset)
