"""`viz.compare_attributions`: the table is each metric of each method's maps, as the
metric functions give them; text and figure show it; unknown names are listed."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import viz
from jaxcnn.models import LeNet5

MODEL = LeNet5()
VARIABLES = MODEL.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
IMAGES = jax.random.uniform(jax.random.key(3), (2, 32, 32, 1))


def test_the_table_holds_each_metric_of_each_method(capsys):
    key = jax.random.key(5)
    result = viz.compare_attributions(
        MODEL, VARIABLES, IMAGES, 4, methods=("saliency", "input_x_gradient", "gradcam"),
        layer="conv2", key=key, steps=6, samples=3)
    assert list(result.table) == ["saliency", "input_x_gradient", "gradcam"]
    maps = viz.saliency(MODEL, VARIABLES, IMAGES, 4)
    assert result.table["saliency"]["deletion"] == pytest.approx(
        float(viz.deletion(MODEL, VARIABLES, IMAGES, maps, 4, steps=6).auc.mean()), rel=1e-5)
    signed = viz.input_x_gradient(MODEL, VARIABLES, IMAGES, 4)
    assert result.table["input_x_gradient"]["infidelity"] == pytest.approx(float(
        viz.infidelity(MODEL, VARIABLES, IMAGES, signed, 4, key=key, samples=3,
                       normalize=True).mean()), rel=1e-5)
    sensitivity = viz.max_sensitivity(lambda x: viz.gradcam(MODEL, VARIABLES, x, "conv2", 4),
                                      IMAGES, key=key, samples=3)
    assert result.table["gradcam"]["max_sensitivity"] == pytest.approx(
        float(sensitivity.mean()), rel=1e-4)
    np.testing.assert_allclose(result.maps["saliency"], maps, rtol=1e-6)
    np.testing.assert_allclose(result.maps["input_x_gradient"], viz.integrated.heatmap(signed),
                               rtol=1e-6)
    assert result.scores["gradcam"]["deletion"].shape == (2,)
    printed = capsys.readouterr().out
    assert printed.strip() == result.text and "(lower better)" in printed
    assert len(result.text.splitlines()) == 5 and result.figure.axes[0].get_title()
    assert all(np.isfinite(v) for row in result.table.values() for v in row.values())


def test_unknown_methods_and_metrics_are_listed():
    with pytest.raises(ValueError, match=r"unknown method\(s\) or metric\(s\) 'lime', 'auc'; "
                                         r"methods: saliency, smoothgrad"):
        viz.compare_attributions(MODEL, VARIABLES, IMAGES, methods=("saliency", "lime"),
                                 metrics=("auc",), key=jax.random.key(0))
