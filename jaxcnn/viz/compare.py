"""Which explanation to trust, as one table: attribution methods x faithfulness metrics.

Contract: `compare_attributions(model, variables, images, class_index, methods=, key=)`
explains the batch with every method (`explain.attribute`), scores every method with
every metric of `metrics` (deletion and insertion AUC, infidelity, max-sensitivity) and
returns a `Comparison`: `table[method][metric]` (the mean over the images), the same as
aligned text (printed when `show`), each image's scores and each method's maps (so a
caller writes or plots them without explaining twice), and a matplotlib figure (a colour table, each
column shaded from its best value to its worst). Infidelity uses the paper's scale-free
form (`normalize=True`) so maps in [0, 1] and signed attributions compare fairly; signed
methods are scored on their signed attributions, map methods on their maps.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from jaxcnn.data.arrays import unit_float
from jaxcnn.viz.attribution import check_images, target_classes
from jaxcnn.viz.explain import METHODS, attribute
from jaxcnn.viz.integrated import heatmap
from jaxcnn.viz.metrics import deletion, infidelity, insertion, max_sensitivity

METRICS = ("deletion", "insertion", "infidelity", "max_sensitivity")
LOWER_IS_BETTER = {"deletion": True, "insertion": False, "infidelity": True,
                   "max_sensitivity": True}


class Comparison(NamedTuple):
    """`table[method][metric]`: mean over the images; `text`: the table as text;
    `figure`: the table drawn, each column shaded from best (green) to worst;
    `scores[method][metric]`: (N,) per image; `maps[method]`: (N, H, W) in [0, 1]."""

    table: dict[str, dict[str, float]]
    text: str
    figure: Figure
    scores: dict[str, dict[str, np.ndarray]]
    maps: dict[str, np.ndarray]


def compare_attributions(model: nn.Module, variables, images: jax.Array, class_index=None, *,
                         methods: Sequence[str] = ("saliency", "integrated_gradients",
                                                   "occlusion", "gradcam"),
                         layer: str | None = None, metrics: Sequence[str] = METRICS,
                         key: jax.Array, options: dict | None = None, steps: int = 16,
                         samples: int = 8, show: bool = True) -> Comparison:
    """Scores attribution methods with faithfulness metrics on one batch.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      images: (N, H, W, C) batch, float in [0, 1] or uint8.
      class_index: class explained; an int, one per image, or None for the predicted one.
      methods: names of `explain.METHODS`.
      layer: the layer of the class activation map methods.
      metrics: names of METRICS.
      key: draws the perturbations of infidelity and max-sensitivity (and SmoothGrad's).
      options: {method: its keyword arguments}, e.g. {"occlusion": {"window": 4}}.
      steps: deletion and insertion steps.
      samples: perturbations per image of infidelity and max-sensitivity.
      show: print the table.

    Returns:
      The `Comparison`.

    Raises:
      ValueError: unknown methods or metrics (listing the valid ones), and what a method
        or metric refuses.
    """
    unknown = [m for m in methods if m not in METHODS] + [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown method(s) or metric(s) {', '.join(map(repr, unknown))}; "
                         f"methods: {', '.join(METHODS)}; metrics: {', '.join(METRICS)}.")
    check_images(model, images, class_index)
    images = unit_float(jnp.asarray(images))
    classes = target_classes(model, variables, images, class_index)
    scores, maps = {}, {}
    for method in methods:
        explain = _explainer(model, variables, method, layer, key, (options or {}).get(method, {}))
        maps[method], scores[method] = _scores(model, variables, images, classes, explain,
                                               metrics, key, steps, samples)
    table = {method: {metric: float(values.mean()) for metric, values in per_image.items()}
             for method, per_image in scores.items()}
    text = _as_text(table, metrics)
    if show:
        print(text)
    return Comparison(table, text, _as_figure(table, metrics), scores, maps)


def _explainer(model, variables, method, layer, key, options):
    """images, classes -> (maps (N, H, W), attributions (N, H, W, C)) of one method."""
    function, takes_layer, signed = METHODS[method]
    options = {"key": key, **options} if method == "smoothgrad" else options

    def explain(images, classes):
        if not signed:
            maps = attribute(model, variables, images, classes, method=method,
                             layer=layer if takes_layer else None, **options)
            return maps, jnp.broadcast_to(maps[..., None], images.shape)
        args = (model, variables, images, layer) if takes_layer else (model, variables, images)
        signed_attributions = function(*args, classes, **options)
        return heatmap(signed_attributions), signed_attributions

    return explain


def _scores(model, variables, images, classes, explain, metrics, key, steps, samples):
    maps, attributions = explain(images, classes)
    scores = {}
    if "deletion" in metrics:
        scores["deletion"] = deletion(model, variables, images, maps, classes, steps=steps).auc
    if "insertion" in metrics:
        scores["insertion"] = insertion(model, variables, images, maps, classes,
                                        steps=steps).auc
    if "infidelity" in metrics:
        scores["infidelity"] = infidelity(model, variables, images, attributions, classes,
                                          key=key, samples=samples, normalize=True)
    if "max_sensitivity" in metrics:
        tiled = jnp.tile(classes, samples + 1)  # the copies keep their image's class
        scores["max_sensitivity"] = max_sensitivity(lambda x: explain(x, tiled)[0], images,
                                                    key=key, samples=samples)
    return np.asarray(maps), {metric: np.asarray(scores[metric]) for metric in metrics}


def _as_text(table, metrics) -> str:
    width = max(len(m) for m in table) + 2
    arrows = {m: "(lower better)" if LOWER_IS_BETTER[m] else "(higher better)" for m in metrics}
    lines = ["method".ljust(width) + "".join(f"{m:>16}" for m in metrics),
             "".ljust(width) + "".join(f"{arrows[m]:>16}" for m in metrics)]
    for method, scores in table.items():
        lines.append(method.ljust(width) + "".join(f"{scores[m]:>16.4g}" for m in metrics))
    return "\n".join(lines)


def _as_figure(table, metrics) -> Figure:
    values = np.array([[table[method][m] for m in metrics] for method in table])
    quality = np.zeros_like(values)
    for j, metric in enumerate(metrics):  # 1: the column's best value, 0: its worst
        column = values[:, j]
        span = column.max() - column.min()
        good = (column.max() - column) if LOWER_IS_BETTER[metric] else (column - column.min())
        quality[:, j] = good / span if span > 0 else 1.0
    fig = Figure(figsize=(1.9 * len(metrics) + 2.0, 0.5 * len(table) + 1.2))
    ax = fig.subplots()
    ax.imshow(quality, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(metrics)),
                  [f"{m}\n({'lower' if LOWER_IS_BETTER[m] else 'higher'} better)"
                   for m in metrics], fontsize=8)
    ax.set_yticks(range(len(table)), list(table), fontsize=9)
    ax.set_title("attribution methods x faithfulness metrics", fontsize=10)
    return fig
