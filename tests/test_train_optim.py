"""jaxcnn.train optimizers, schedules and losses against closed forms and NumPy."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import train


def _problem():
    """A tiny softmax regression: 3 classes separable by the sign of two features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    params = {"kernel": jnp.zeros((4, 3)), "bias": jnp.zeros(3)}
    loss = lambda p: train.softmax_cross_entropy(x @ p["kernel"] + p["bias"], y).mean()
    return params, loss


@pytest.mark.parametrize("name", train.optimizer_names())
def test_each_optimizer_lowers_the_loss(name):
    params, loss = _problem()
    tx = train.make_optimizer(name, 0.05, weight_decay=1e-4, clip_norm=10.0)
    state = tx.init(params)
    start = float(loss(params))

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(40):
        params, state = step(params, state)
    assert float(loss(params)) < 0.85 * start


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_weight_decay_shrinks_kernels_only(name):
    params = {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full(2, 2.0)}
    tx = train.make_optimizer(name, 0.1, weight_decay=0.5)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    # sgd: lr * wd * w (coupled); adamw: lr * wd * w (decoupled, adam's part is 0 for g=0).
    np.testing.assert_allclose(updates["kernel"], -0.1 * 0.5 * 2.0, rtol=1e-6)
    np.testing.assert_allclose(updates["bias"], 0.0)


def test_clipping_scales_the_gradient_to_the_norm():
    params = {"w": jnp.zeros(2)}
    tx = train.make_optimizer("sgd", 1.0, clip_norm=1.0)
    updates, _ = tx.update({"w": jnp.array([6.0, 8.0])}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.6, -0.8], rtol=1e-6)


def test_accumulation_averages_k_steps_into_one_update():
    params = {"w": jnp.zeros(2)}
    tx = train.make_optimizer("sgd", 1.0, accumulate_steps=2)
    state = tx.init(params)
    first, state = tx.update({"w": jnp.array([1.0, 2.0])}, state, params)
    second, state = tx.update({"w": jnp.array([3.0, 6.0])}, state, params)
    np.testing.assert_allclose(first["w"], 0.0)
    np.testing.assert_allclose(second["w"], [-2.0, -4.0])


def _closed_form(name, lr, t, total, warmup):
    if name == "constant":
        return lr
    if name == "step":
        return lr * 0.1 ** (t // (total // 3))
    if name == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * t / total))
    if name == "warmup_cosine":
        if t < warmup:
            return lr * t / warmup
        return lr * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))
    peak_at, low, final = 0.3 * total, lr / 25, lr / 25 / 1e4  # one_cycle
    if t <= peak_at:
        return low + (lr - low) * 0.5 * (1 - math.cos(math.pi * t / peak_at))
    return final + (lr - final) * 0.5 * (1 + math.cos(math.pi * (t - peak_at) / (total - peak_at)))


@pytest.mark.parametrize("name", train.schedule_names())
def test_schedules_match_their_closed_forms(name):
    total, warmup, lr = 100, 10, 0.4
    schedule = train.make_schedule(name, lr, total, warmup_steps=warmup)
    for t in (0, 5, 10, 29, 30, 31, 50, 67, 99, 100):
        assert float(schedule(t)) == pytest.approx(_closed_form(name, lr, t, total, warmup),
                                                   rel=1e-4, abs=1e-7), t


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*adagrad, adam, adamw"):
        train.make_optimizer("adamm", 0.1)
    with pytest.raises(ValueError, match="unknown schedule 'linear'.*constant, cosine, one_cycle"):
        train.make_schedule("linear", 0.1, 10)
    with pytest.raises(ValueError, match="unknown loss 'mse'.*cross_entropy, total_error"):
        train.make_loss("mse")
    with pytest.raises(ValueError, match="warmup_steps=10 must be smaller than the run's 10"):
        train.make_schedule("warmup_cosine", 0.1, 10, warmup_steps=10)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_losses_match_numpy_with_and_without_label_smoothing():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3])
    for smoothing in (0.0, 0.2):
        target = np.eye(4)[labels] * (1 - smoothing) + smoothing / 4
        p = _softmax(logits.astype(np.float64))
        ce = -(target * np.log(p)).sum(-1)
        total = 0.5 * ((target - p) ** 2).sum(-1)  # seed 003: sum 1/2 (target - output)^2
        np.testing.assert_allclose(train.make_loss("cross_entropy", smoothing)(logits, labels),
                                   ce, rtol=1e-5)
        np.testing.assert_allclose(train.make_loss("total_error", smoothing)(logits, labels),
                                   total, rtol=1e-5)
    # the seed's worked example: output [0.2, 0.4, 0.1, 0.3], target class 2
    seed_logits = jnp.log(jnp.array([[0.2, 0.4, 0.1, 0.3]]))
    assert float(train.total_error(seed_logits, jnp.array([2]))[0]) == pytest.approx(
        0.5 * (0.04 + 0.16 + 0.81 + 0.09), rel=1e-5)
