"""Deletion, insertion, infidelity and max-sensitivity: against NumPy loops, closed forms,
captum on a torch twin (where installed), the orderings a faithful map must win, and
their errors."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import viz
from jaxcnn.models import LeNet5
from jaxcnn.viz.metrics import deletion, infidelity, insertion, max_sensitivity, pixel_ranks
from test_viz_integrated import Q_IMAGES, Q_VARS, QUADRATIC, _torch_lenet

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
    deleted, inserted = ({k: v[i] for k, v in aucs.items()} for i in (0, 1))
    assert np.all(deleted["ig"] < deleted["random"]) and np.all(deleted["random"] < deleted["reverse"])
    assert np.all(inserted["ig"] > inserted["random"])
    assert np.all(inserted["random"] > inserted["reverse"])


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


class Linear(nn.Module):
    """logits = W x: every perturbation's logit change is exactly its dot with W."""
    num_classes: int = 3
    input_shape: tuple = (5, 4, 2)

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.num_classes, use_bias=False)(x.reshape(len(x), -1))


def test_infidelity_is_zero_for_the_exact_linear_attributions_and_matches_a_loop():
    model = Linear()
    x = jax.random.uniform(jax.random.key(1), (3, 5, 4, 2))
    variables = model.init(jax.random.key(0), x)
    gradient = np.broadcast_to(np.asarray(variables["params"]["Dense_0"]["kernel"])[:, 1]
                               .reshape(5, 4, 2), x.shape)
    key = jax.random.key(7)
    exact = infidelity(model, variables, x, gradient, 1, key=key)
    np.testing.assert_allclose(exact, 0, atol=1e-9)
    wrong = np.asarray(x) * gradient  # input x gradient is not this model's response
    got = infidelity(model, variables, x, wrong, 1, key=key, samples=5,
                     noise=0.2)
    noise = 0.2 * np.asarray(jax.random.normal(key, (5, *x.shape)))
    logit = lambda v: np.asarray(model.apply(variables, v))[:, 1]
    errors = [((n * wrong).sum(axis=(1, 2, 3)) - (logit(x) - logit(x - n))) ** 2 for n in noise]
    np.testing.assert_allclose(got, np.mean(errors, axis=0), rtol=1e-4)
    assert np.all(infidelity(model, variables, x, 2 * gradient, 1, key=key, normalize=True) < 1e-9)


def test_max_sensitivity_matches_a_loop_and_is_zero_for_a_constant_explanation():
    explain = lambda v: viz.saliency(MODEL, VARIABLES, v, 3)
    key = jax.random.key(8)
    got = max_sensitivity(explain, IMAGES, key=key, samples=4, radius=0.05)
    moves = np.asarray(jax.random.uniform(key, (4, *IMAGES.shape), minval=-0.05, maxval=0.05))
    base = np.asarray(explain(IMAGES)).reshape(2, -1)
    changes = [np.linalg.norm(np.asarray(explain(IMAGES + m)).reshape(2, -1) - base, axis=1)
               for m in moves]
    np.testing.assert_allclose(got, np.max(changes, axis=0) / np.linalg.norm(base, axis=1),
                               rtol=1e-4, atol=1e-6)
    assert np.all(got > 0)
    constant = max_sensitivity(lambda v: jnp.ones((len(v), 3)), IMAGES, key=key)
    np.testing.assert_array_equal(constant, 0)
    with pytest.raises(ValueError, match="one explanation per image; it returned 1 rows for 22"):
        max_sensitivity(lambda v: jnp.ones((1, 3)), IMAGES, key=key)


def test_infidelity_and_sensitivity_match_captum():
    torch = pytest.importorskip("torch")
    captum_metrics = pytest.importorskip("captum.metrics")
    captum_attr = pytest.importorskip("captum.attr")
    net = _torch_lenet(VARIABLES)
    x = torch.tensor(np.asarray(IMAGES).transpose(0, 3, 1, 2))
    key = jax.random.key(9)
    ours = viz.input_x_gradient(MODEL, VARIABLES, IMAGES, 3)
    noise = 0.1 * np.asarray(jax.random.normal(key, (4, *IMAGES.shape)))
    # captum repeats each image `samples` times in a row: hand it our noise in that order
    noise_rows = torch.tensor(noise.transpose(1, 0, 4, 2, 3).reshape(8, 1, 32, 32))
    theirs = captum_metrics.infidelity(
        net, lambda inputs: (noise_rows, inputs - noise_rows), x,
        torch.tensor(np.asarray(ours).transpose(0, 3, 1, 2)), target=3, n_perturb_samples=4)
    np.testing.assert_allclose(infidelity(MODEL, VARIABLES, IMAGES, ours, 3, key=key, samples=4),
                               theirs.numpy(), rtol=1e-3, atol=1e-7)
    moves = np.asarray(jax.random.uniform(key, (3, *IMAGES.shape), minval=-0.02, maxval=0.02))
    move_rows = torch.tensor(moves.transpose(1, 0, 4, 2, 3).reshape(6, 1, 32, 32))
    saliency = captum_attr.Saliency(net)
    theirs = captum_metrics.sensitivity_max(
        saliency.attribute, x, perturb_func=lambda inputs: inputs + move_rows,
        n_perturb_samples=3, target=3, abs=False)
    explain = lambda v: viz.attribution._pixel_gradients(
        MODEL, VARIABLES, v, jnp.full(len(v), 3))
    np.testing.assert_allclose(max_sensitivity(explain, IMAGES, key=key, samples=3),
                               theirs.numpy(), rtol=1e-3)

