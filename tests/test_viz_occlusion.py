"""Occlusion against a NumPy loop over the windows, against captum on a torch twin of
LeNet-5 (where torch and captum are installed), and its errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.models import LeNet5
from jaxcnn.viz import occlusion
from test_viz_integrated import _torch_lenet

MODEL = LeNet5()
VARIABLES = MODEL.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
IMAGES = jax.random.uniform(jax.random.key(3), (2, 32, 32, 1))


def _reference(images, cls, window, stride, baseline):
    """One forward pass per window position, accumulated in NumPy."""
    images = np.asarray(images)
    logit = lambda x: np.asarray(MODEL.apply(VARIABLES, x))[:, cls]
    clear = logit(images)
    total, count = np.zeros(images.shape[:3]), np.zeros(images.shape[1:3])
    for top in range(0, 32 - window[0] + 1, stride[0]):
        for left in range(0, 32 - window[1] + 1, stride[1]):
            covered = images.copy()
            covered[:, top:top + window[0], left:left + window[1]] = baseline
            total[:, top:top + window[0], left:left + window[1]] += \
                (clear - logit(covered))[:, None, None]
            count[top:top + window[0], left:left + window[1]] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0)[..., None]


@pytest.mark.parametrize("window, stride, baseline", [
    ((8, 8), (4, 4), 0.0), ((5, 7), (3, 5), 0.5), ((32, 32), (1, 1), 0.0), ((1, 1), (8, 8), 1.0)])
def test_occlusion_matches_a_loop_over_the_windows(window, stride, baseline):
    got = occlusion(MODEL, VARIABLES, IMAGES, 4, window=window, stride=stride,
                    baseline=baseline)
    np.testing.assert_allclose(got, _reference(IMAGES, 4, window, stride, baseline),
                               rtol=1e-4, atol=1e-5)


def test_chunks_and_the_predicted_class_give_the_same_maps():
    predicted = np.asarray(MODEL.apply(VARIABLES, IMAGES)).argmax(axis=1)
    whole = occlusion(MODEL, VARIABLES, IMAGES, predicted, window=6, stride=3)
    np.testing.assert_allclose(occlusion(MODEL, VARIABLES, IMAGES, window=6, stride=3, chunk=7),
                               whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"window": 33}, r"window \(33, 33\) is larger than the 32x32 images"),
    ({"stride": 0}, "stride must be a positive int or"),
    ({"window": (2, 2, 2)}, "window must be a positive int or"),
    ({"chunk": 100}, "chunk must be an int from 1 to the 49 window positions, got 100"),
    ({"class_index": 10}, "class_index 10 is out of range"),
])
def test_bad_arguments_are_refused_before_compiling(kwargs, match):
    with pytest.raises(ValueError, match=match):
        occlusion(MODEL, VARIABLES, IMAGES, **kwargs)


def test_occlusion_matches_captum():
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum.attr")
    x = torch.tensor(np.asarray(IMAGES).transpose(0, 3, 1, 2))
    theirs = captum.Occlusion(_torch_lenet(VARIABLES)).attribute(
        x, sliding_window_shapes=(1, 8, 8), strides=(1, 4, 4), target=3, baselines=0.0)
    ours = occlusion(MODEL, VARIABLES, IMAGES, 3, window=8, stride=4)
    np.testing.assert_allclose(ours, theirs.numpy().transpose(0, 2, 3, 1), rtol=1e-3, atol=1e-5)
