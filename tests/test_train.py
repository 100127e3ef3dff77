"""jaxcnn.train: pure steps, determinism, evaluation counting and the checks of fit."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn
from jaxcnn import data, models, train


def _tiny_data(n=64, size=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.uniform(size=(n, size, size, 1)).astype(np.float32) * 0.1
    images[np.arange(n), labels, labels, 0] = 1.0  # a learnable cue: a bright pixel per class
    return data.from_arrays(images, labels, num_classes=10, name="tiny")


def test_train_step_is_pure_and_lowers_the_loss():
    model = models.create("lenet5")
    state = train.create_state(model, optax.adam(3e-3), seed=0)
    batch = next(_tiny_data().batches(32))
    step = jax.jit(train.train_step)
    first_state, first = step(state, batch)
    again_state, again = step(state, batch)  # the input state is untouched
    assert float(first["loss"]) == float(again["loss"])
    for _ in range(30):
        first_state, metrics = step(first_state, batch)
    assert float(metrics["loss"]) < 0.5 * float(first["loss"])
    assert int(first_state.step) == 31


def test_fit_with_the_same_seed_gives_identical_parameters():
    ds = _tiny_data()
    run = lambda seed: jaxcnn.fit(models.create("lenet5"), ds, epochs=2, batch_size=16,
                                  seed=seed, progress=False)[0].params
    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c)))


def test_8bit_images_in_memory_train_like_their_float_copy():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (48, 32, 32, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 48)
    eight_bit = data.from_arrays(pixels, labels, num_classes=10)
    as_float = data.from_arrays(data.unit_float(pixels), labels, num_classes=10)
    assert eight_bit.images.nbytes * 4 == as_float.images.nbytes

    def run(ds, augment):
        return jaxcnn.fit(models.create("lenet5"), ds, ds, epochs=2, batch_size=16,
                          augment=augment, progress=False)

    (a, history_a), (b, history_b) = run(eight_bit, None), run(as_float, None)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)  # bit for bit
    assert history_a[-1]["eval_loss"] == history_b[-1]["eval_loss"]
    # An augmentation's `x + delta` fuses with the scaling into one multiply-add, rounded
    # once instead of twice: the weights then differ in the last bits only.
    brighten = data.augment.RandomBrightness(0.2)
    (a, _), (b, _) = run(eight_bit, brighten), run(as_float, brighten)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5),
                 a.params, b.params)


def test_evaluate_counts_each_example_once_with_a_padded_last_batch():
    ds = _tiny_data(n=37)
    state = train.create_state(models.create("lenet5"), optax.sgd(0.1), seed=0)
    scores = train.evaluate(state, ds, batch_size=16)
    logits = state.apply_fn(state.variables(), jnp.asarray(ds.images))
    expected_loss = float(optax.softmax_cross_entropy_with_integer_labels(logits, ds.labels).mean())
    expected_acc = float(np.mean(np.argmax(logits, -1) == ds.labels))
    assert scores["count"] == 37
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(expected_acc)


def test_fit_refuses_data_that_do_not_fit_the_model():
    with pytest.raises(ValueError, match=r"images of shape \(28, 28, 1\).*image_size=\(32, 32\)"):
        jaxcnn.fit(models.create("lenet5"), _tiny_data(size=28), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="has 10 classes but the model outputs 3"):
        jaxcnn.fit(models.create("lenet5", num_classes=3), _tiny_data(), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="batch_size=100 is larger than the 64"):
        jaxcnn.fit(models.create("lenet5"), _tiny_data(), epochs=1, batch_size=100)
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'.*adam, adamw"):
        jaxcnn.fit(models.create("lenet5"), _tiny_data(), epochs=1, batch_size=8, optimizer="adamx")


def test_nan_loss_stops_with_the_step():
    ds = _tiny_data(n=32)
    images = ds.images.copy()
    images[20] = np.nan
    bad = dataclasses.replace(ds, images=images)  # from_arrays would refuse the NaN
    with pytest.raises(FloatingPointError, match="became nan at step"):
        jaxcnn.fit(models.create("lenet5"), bad, epochs=1, batch_size=8, progress=False)


def test_fit_writes_history_and_variables(tmp_path):
    model = models.create("lenet5")
    state, history = jaxcnn.fit(model, _tiny_data(), _tiny_data(n=20, seed=1), epochs=2,
                                batch_size=16, workdir=tmp_path, progress=False)
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "seconds"} <= set(history[0])
    restored = jaxcnn.runs.RunDir(tmp_path).read_variables(model)
    for x, y in zip(jax.tree.leaves(restored), jax.tree.leaves(state.variables())):
        np.testing.assert_array_equal(x, y)
