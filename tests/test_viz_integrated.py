"""Integrated gradients and input x gradient: closed forms on models whose integrals are
known, the completeness axiom on LeNet-5, captum on a torch twin (where torch and captum
are installed), and the errors raised before compiling."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.models import LeNet5
from jaxcnn.viz import input_x_gradient, integrated_gradients
from jaxcnn.viz.integrated import METHODS, blurred, heatmap, path_points

SHAPE = (6, 5, 2)


class Quadratic(nn.Module):
    """logit_k = sum(w_k * x^2): its integrated gradients from baseline b are exactly
    w_k (x^2 - b^2), and input x gradient is 2 w_k x^2."""
    num_classes: int = 3
    input_shape: tuple = SHAPE

    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.normal(1.0), (self.num_classes, *self.input_shape))
        return jnp.einsum("nhwc,khwc->nk", x * x, w)


QUADRATIC = Quadratic()
Q_VARS = QUADRATIC.init(jax.random.key(0), jnp.zeros((1, *SHAPE)))
Q_IMAGES = jax.random.uniform(jax.random.key(1), (4, *SHAPE))
LENET = LeNet5()
LENET_VARS = LENET.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
LENET_IMAGES = jax.random.uniform(jax.random.key(2), (3, 32, 32, 1))


@pytest.mark.parametrize("method", METHODS)
def test_path_points_integrate_what_their_rule_integrates_exactly(method):
    alphas, weights = path_points(8, method)
    assert alphas.shape == weights.shape == (8,) and 0 <= alphas.min() <= alphas.max() <= 1
    assert weights.sum() == pytest.approx(1.0, abs=1e-6)
    exact_degree = {"gausslegendre": 15, "riemann_trapezoid": 1, "riemann_middle": 1}
    degree = exact_degree.get(method, 0)
    for k in range(degree + 1):  # the integral of t^k over [0, 1] is 1 / (k + 1)
        assert float(np.sum(weights * alphas.astype(np.float64) ** k)) == \
            pytest.approx(1 / (k + 1), abs=1e-5)


@pytest.mark.parametrize("baseline", ["black", "array"])
def test_quadratic_model_attributions_match_the_closed_form(baseline):
    start = 0.0 if baseline == "black" else 0.25 * np.ones(SHAPE[-1], np.float32)
    result = integrated_gradients(QUADRATIC, Q_VARS, Q_IMAGES, 1, steps=4,
                                  baseline="black" if baseline == "black" else start)
    w = np.asarray(Q_VARS["params"]["w"][1])
    expected = w * (np.asarray(Q_IMAGES) ** 2 - np.asarray(start) ** 2)
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.completeness_error, 0, atol=1e-5)
    np.testing.assert_allclose(input_x_gradient(QUADRATIC, Q_VARS, Q_IMAGES, 1),
                               2 * w * np.asarray(Q_IMAGES) ** 2, rtol=1e-5, atol=1e-6)


def test_completeness_holds_on_lenet_within_one_percent_at_64_steps():
    result = integrated_gradients(LENET, LENET_VARS, LENET_IMAGES, 3, steps=64)
    logits = LENET.apply(LENET_VARS, LENET_IMAGES)[:, 3] - LENET.apply(
        LENET_VARS, jnp.zeros_like(LENET_IMAGES))[:, 3]
    assert result.attributions.shape == LENET_IMAGES.shape
    assert np.all(np.abs(result.completeness_error) <= 0.01 * np.abs(logits))
    coarse = integrated_gradients(LENET, LENET_VARS, LENET_IMAGES, 3, steps=2,
                                  method="riemann_left")
    assert np.abs(coarse.completeness_error).max() > np.abs(result.completeness_error).max()


def test_chunks_give_the_same_attributions_as_one_pass():
    whole = integrated_gradients(LENET, LENET_VARS, LENET_IMAGES, steps=10)
    chunked = integrated_gradients(LENET, LENET_VARS, LENET_IMAGES, steps=10, chunk=3)
    np.testing.assert_allclose(chunked.attributions, whole.attributions, rtol=1e-5, atol=1e-7)


def test_baselines_blurred_uniform_and_uint8_images():
    flat = jnp.full((2, 12, 12, 1), 0.4)
    np.testing.assert_allclose(blurred(flat, 2.0), flat, atol=1e-6)  # nothing to blur
    image = jnp.zeros((1, 9, 9, 1)).at[0, 4, 4, 0].set(1.0)
    spread = np.asarray(blurred(image, 1.0))[0, :, :, 0]
    assert spread.sum() == pytest.approx(1.0, abs=1e-5) and spread[4, 4] < 0.2
    assert spread[4, 3] == pytest.approx(spread[3, 4]) and spread[4, 3] > spread[3, 3]
    noise = integrated_gradients(QUADRATIC, Q_VARS, Q_IMAGES, 0, baseline="uniform",
                                 key=jax.random.key(0), steps=4)
    np.testing.assert_allclose(noise.completeness_error, 0, atol=1e-5)
    pixels = np.asarray(Q_IMAGES * 255, np.uint8)
    np.testing.assert_allclose(
        integrated_gradients(QUADRATIC, Q_VARS, pixels, 0, steps=4).attributions,
        integrated_gradients(QUADRATIC, Q_VARS, pixels.astype(np.float32) / 255, 0,
                             steps=4).attributions, rtol=1e-5, atol=1e-7)
    maps = heatmap(noise.attributions)
    assert maps.shape == (4, 6, 5) and float(maps.max()) == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "simpson"}, "method must be one of riemann_left"),
    ({"baseline": "grey"}, "baseline must be one of black, blurred, uniform or an array"),
    ({"baseline": "uniform"}, r"draws noise: pass key=jax.random.key\(seed\)"),
    ({"baseline": np.zeros((3, 3))}, r"baseline of shape \(3, 3\) does not broadcast"),
    ({"steps": 0}, "steps must be a positive int, got 0"),
    ({"steps": 4, "chunk": 5}, "chunk must be an int from 1 to steps=4, got 5"),
    ({"class_index": 3}, "class_index 3 is out of range"),
    ({"method": "riemann_trapezoid", "steps": 1}, "riemann_trapezoid needs steps >= 2"),
])
def test_bad_arguments_are_refused_before_compiling(kwargs, match):
    with pytest.raises(ValueError, match=match):
        integrated_gradients(QUADRATIC, Q_VARS, Q_IMAGES, **kwargs)


def _torch_lenet(variables):
    """LeNet-5 in torch with the jaxcnn model's weights (HWIO -> OIHW, NHWC flatten)."""
    import torch
    from torch import nn as tnn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.logits = tnn.Linear(400, 120), tnn.Linear(120, 100), \
                tnn.Linear(100, 10)
            # one ReLU module per use: captum's guided backprop hooks ReLU modules
            self.relus = tnn.ModuleList([tnn.ReLU() for _ in range(4)])

        def forward(self, x):
            x = tnn.functional.max_pool2d(self.relus[0](self.conv1(x)), 2)
            x = tnn.functional.max_pool2d(self.relus[1](self.conv2(x)), 2)
            x = x.permute(0, 2, 3, 1).flatten(1)  # flatten in NHWC order, as jaxcnn does
            return self.logits(self.relus[3](self.fc2(self.relus[2](self.fc1(x)))))

    net = Net()
    params = variables["params"]
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            getattr(net, name).weight.copy_(torch.tensor(
                np.asarray(params[name]["kernel"]).transpose(3, 2, 0, 1)))
            getattr(net, name).bias.copy_(torch.tensor(np.asarray(params[name]["bias"])))
        for name in ("fc1", "fc2", "logits"):
            getattr(net, name).weight.copy_(torch.tensor(np.asarray(params[name]["kernel"]).T))
            getattr(net, name).bias.copy_(torch.tensor(np.asarray(params[name]["bias"])))
    return net.eval()


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
def test_integrated_gradients_and_input_x_gradient_match_captum(method):
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum.attr")
    net = _torch_lenet(LENET_VARS)
    x = torch.tensor(np.asarray(LENET_IMAGES).transpose(0, 3, 1, 2), requires_grad=True)
    np.testing.assert_allclose(net(x).detach().numpy(), LENET.apply(LENET_VARS, LENET_IMAGES),
                               rtol=1e-4, atol=1e-5)  # the twin is the same network
    theirs, delta = captum.IntegratedGradients(net).attribute(
        x, target=3, n_steps=16, method=method, return_convergence_delta=True)
    ours = integrated_gradients(LENET, LENET_VARS, LENET_IMAGES, 3, steps=16, method=method)
    theirs = theirs.detach().numpy().transpose(0, 2, 3, 1)
    if method == "riemann_trapezoid":
        # captum's trapezoid weights are 1/n with halved ends: they sum to (n - 1)/n, not 1.
        # Ours are the trapezoid rule's, 1/(n - 1) with halved ends: n/(n - 1) times theirs.
        theirs = theirs * 16 / 15
    else:
        np.testing.assert_allclose(ours.completeness_error, delta.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.attributions, theirs, rtol=1e-3, atol=1e-5)
    theirs = captum.InputXGradient(net).attribute(x, target=3).detach().numpy()
    np.testing.assert_allclose(input_x_gradient(LENET, LENET_VARS, LENET_IMAGES, 3),
                               theirs.transpose(0, 2, 3, 1), rtol=1e-3, atol=1e-6)


def test_guided_backprop_matches_captum():
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum.attr")
    from jaxcnn.viz import guided_backprop
    x = torch.tensor(np.asarray(LENET_IMAGES).transpose(0, 3, 1, 2), requires_grad=True)
    theirs = captum.GuidedBackprop(_torch_lenet(LENET_VARS)).attribute(x, target=5)
    np.testing.assert_allclose(guided_backprop(LENET, LENET_VARS, LENET_IMAGES, 5),
                               theirs.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-3,
                               atol=1e-6)

