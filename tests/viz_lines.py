"""A tiny oriented-lines task and a LeNet-5 trained on it, shared by the viz tests.

Class 0: one vertical bar, class 1: one horizontal bar, 2 pixels wide and 10-20 long, at a
random place on a faintly noisy 32x32 background. Training takes a few seconds on CPU and
the model is cached per process.
"""
from __future__ import annotations

import functools

import numpy as np

import jaxcnn

VERTICAL, HORIZONTAL = 0, 1


def lines(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 1), labels (N,) and boxes (N, 4) = (top, bottom, left, right)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.1, (count, 32, 32, 1)).astype(np.float32)
    labels = rng.integers(0, 2, count).astype(np.int32)
    boxes = np.zeros((count, 4), np.int32)
    for i, label in enumerate(labels):
        length = int(rng.integers(10, 21))
        along, across = int(rng.integers(2, 30 - length)), int(rng.integers(2, 28))
        if label == VERTICAL:
            top, bottom, left, right = along, along + length, across, across + 2
        else:
            top, bottom, left, right = across, across + 2, along, along + length
        images[i, top:bottom, left:right] = 1.0
        boxes[i] = top, bottom, left, right
    return images, labels, boxes


@functools.cache
def trained_lenet(seed: int = 0):
    """(model, variables) of LeNet-5 trained to ~100% on the lines task (seconds)."""
    images, labels, _ = lines(768, seed=0)
    data = jaxcnn.data.from_arrays(images, labels, num_classes=2, name="lines")
    model = jaxcnn.models.create("lenet5", num_classes=2, input_shape=(32, 32, 1))
    state, history = jaxcnn.fit(model, data, epochs=3, batch_size=32, seed=seed,
                                progress=False)
    # Seeds 0-15 all passed this bar on a 2-core Intel Xeon (the task is easy: two classes).
    assert history[-1]["train_accuracy"] > 0.95, history
    return model, state.variables()
