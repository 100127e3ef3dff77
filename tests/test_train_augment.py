"""fit(augment=...): training batches are augmented inside the step, evaluation never is."""
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import data, train
from jaxcnn.data import augment as A
from test_train_engine import SmallNet

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _dataset(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.uniform(size=(n, 6, 6, 1)).astype(np.float32) * 0.1
    images[np.arange(n), labels, labels, 0] = 1.0
    return data.from_arrays(images, labels, num_classes=4)


def _blank(key, images):
    """An 'augmentation' no real image survives: every pixel becomes 0.5."""
    return jnp.full_like(images, 0.5)


def test_train_is_augmented_and_eval_is_not():
    # A zero learning rate keeps the initial parameters, so both losses are known exactly.
    model, train_set, eval_set = SmallNet(), _dataset(), _dataset(seed=1)
    state, history = train.fit(model, train_set, eval_set, epochs=1, batch_size=16,
                               optimizer=optax.sgd(0.0), augment=_blank, progress=False)
    blank = data.from_arrays(np.full((64, 6, 6, 1), 0.5, np.float32), train_set.labels,
                             num_classes=4)
    assert history[0]["train_loss"] == pytest.approx(train.evaluate(state, blank, 16)["loss"],
                                                     rel=1e-5)
    assert history[0]["eval_loss"] == pytest.approx(train.evaluate(state, eval_set, 16)["loss"],
                                                    rel=1e-6)
    assert abs(history[0]["eval_loss"] - train.evaluate(state, blank, 16)["loss"]) > 1e-3


def test_augmented_runs_repeat_exactly_and_differ_from_plain():
    aug = A.Sequential([A.RandomFlip(), A.RandomTranslation(0.2, 0.2)])
    runs = [train.fit(SmallNet(), _dataset(), epochs=2, batch_size=16, seed=3, augment=aug,
                      progress=False)[0].params for _ in range(2)]
    plain = train.fit(SmallNet(), _dataset(), epochs=2, batch_size=16, seed=3,
                      progress=False)[0].params
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        np.testing.assert_array_equal(a, b)
    assert max(float(jnp.abs(a - b).max()) for a, b in
               zip(jax.tree.leaves(runs[0]), jax.tree.leaves(plain))) > 1e-4


def test_augment_must_be_callable():
    with pytest.raises(TypeError, match="augment must be a callable"):
        train.fit(SmallNet(), _dataset(), epochs=1, batch_size=16, augment="flip")


PMAP_SCRIPT = """
from jaxcnn import train
from jaxcnn.data import augment as A
import test_train_augment as t
aug = A.RandomTranslation(0.2, 0.2)
out = [train.fit(t.SmallNet(), t._dataset(), epochs=1, batch_size=16, strategy="pmap",
                 augment=aug, progress=False)[1][0]["train_loss"] for _ in range(2)]
assert out[0] == out[1], out
print("ok", out)
"""


def test_pmap_augments_deterministically():
    # Each device augments its own slice (the device index is folded into the key).
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    result = subprocess.run([sys.executable, "-c", PMAP_SCRIPT], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout
