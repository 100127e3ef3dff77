"""Deletion and insertion: against a NumPy loop, the orderings a faithful map must win, and
their errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import viz
from jaxcnn.models import LeNet5
from jaxcnn.viz.metrics import deletion, insertion, pixel_ranks
from test_viz_integrated import Q_IMAGES, Q_VARS, QUADRATIC

MODEL = LeNet5()
VARIABLES = MODEL.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
IMAGES = jax.random.uniform(jax.random.key(4), (2, 32, 32, 1))


def _reference(images, maps, cls, steps, other):
    """The probability curve by a loop: NumPy ranks, one forward pass per step."""
    images, other = np.asarray(images), np.asarray(other)
    n, h, w = maps.shape
    order = np.argsort(-np.asarray(maps).reshape(n, -1), axis=1, kind="stable")
    curve = np.zeros((n, steps + 1))
    for k in range(steps + 1):
        count = int(np.round(k * h * w / steps))
        mixed = images.copy()
        for i in range(n):
            rows, cols = np.unravel_index(order[i, :count], (h, w))
            mixed[i, rows, cols] = other[i, rows, cols]
        logits = np.asarray(MODEL.apply(VARIABLES, mixed), np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        curve[:, k] = (probs / probs.sum(axis=1, keepdims=True))[np.arange(n), cls]
    return curve, np.trapezoid(curve, dx=1 / steps, axis=1)


def test_deletion_and_insertion_match_a_loop_over_the_steps():
    maps = jax.random.uniform(jax.random.key(5), (2, 32, 32))
    cls = np.array([1, 6])
    got = deletion(MODEL, VARIABLES, IMAGES, maps, cls, steps=7, baseline=0.25, chunk=3)
    curve, auc = _reference(IMAGES, maps, cls, 7, np.full(IMAGES.shape, 0.25))
    np.testing.assert_allclose(got.curve, curve, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.auc, auc, rtol=1e-4, atol=1e-6)
    start = jnp.zeros_like(IMAGES)
    got = insertion(MODEL, VARIABLES, IMAGES, maps, cls, steps=5, start=start)
    reference = [_reference(start, maps, cls, 5, IMAGES)[i] for i in (0, 1)]
    np.testing.assert_allclose(got.curve, reference[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.auc, reference[1], rtol=1e-4, atol=1e-6)


def test_ranks_break_ties_by_pixel_order():
    ranks = pixel_ranks(jnp.array([[[0.5, 0.9], [0.5, 0.1]]]))
    np.testing.assert_array_equal(ranks, [[[1, 0], [2, 3]]])


def test_a_faithful_map_beats_its_reverse_and_random_maps():
    # Quadratic's integrated gradients are each pixel's exact share of the logit.
    images = Q_IMAGES[:2]
    ig = viz.integrated_gradients(QUADRATIC, Q_VARS, images, 0, steps=4).attributions.sum(-1)
    random = jax.random.uniform(jax.random.key(6), ig.shape)
    aucs = {name: (deletion(QUADRATIC, Q_VARS, images, m, 0, steps=10).auc,
                   insertion(QUADRATIC, Q_VARS, images, m, 0, steps=10,
                             start=jnp.zeros_like(images)).auc)
            for name, m in (("ig", ig), ("reverse", -ig), ("random", random))}
    assert np.all(aucs["ig"][0] < aucs["random"][0]) and np.all(aucs["random"][0] < aucs["reverse"][0])
    assert np.all(aucs["ig"][1] > aucs["random"][1]) and np.all(aucs["random"][1] > aucs["reverse"][1])


@pytest.mark.parametrize("call, match", [
    (lambda: deletion(MODEL, VARIABLES, IMAGES, jnp.zeros((2, 32, 32, 1))),
     r"maps must be \(N, H, W\) = \(2, 32, 32\)"),
    (lambda: deletion(MODEL, VARIABLES, IMAGES, jnp.zeros((2, 32, 32)), steps=0),
     "steps must be a positive int, got 0"),
    (lambda: deletion(MODEL, VARIABLES, IMAGES, jnp.zeros((2, 32, 32)), steps=4, chunk=6),
     "chunk must be an int from 1 to steps"),
    (lambda: insertion(MODEL, VARIABLES, IMAGES, jnp.zeros((2, 32, 32)), start=jnp.zeros(3)),
     r"start must have the images' shape \(2, 32, 32, 1\)"),
])
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
