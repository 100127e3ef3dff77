"""Explanations of a trained run's test images, as `jaxcnn explain` writes them.

Contract: `write_explanations(run, out, methods)` explains the first `images` test images
of a run (`jaxcnn.runs.load_run`) with each method (`explain.attribute`, the whole batch
in one compiled call per method) and writes under `out` (any filesystem): `maps.npz`
(one (N, H, W) array per method, with `labels`), `<method>.png` (the maps over the
images), and with `metrics`: `metrics.json` and `metrics.png` (the methods x metrics table
of `compare.compare_attributions`) and `faithful_<method>.png`, a contact sheet of the
images whose maps are the most and the least faithful by deletion AUC. Class activation
maps use `layer`, by default the model's last layer with feature maps.
"""
from __future__ import annotations

import io
import json
from typing import Sequence

import jax
import numpy as np
from etils import epath

from jaxcnn.data.arrays import unit_float
from jaxcnn.paths import as_path, write_atomically
from jaxcnn.runs import Run
from jaxcnn.viz import plot
from jaxcnn.viz.compare import compare_attributions
from jaxcnn.viz.explain import METHODS, attribute
from jaxcnn.viz.render import activation_shapes


def write_explanations(run: Run, out, methods: Sequence[str], *, layer: str | None = None,
                       images: int = 16, metrics: bool = False, seed: int = 0,
                       sheet: int = 4) -> list[epath.Path]:
    """Explains a run's first test images with `methods` and writes the files under `out`.

    Args:
      run: from `load_run`.
      out: the output folder, local or remote.
      methods: names of `explain.METHODS`.
      layer: the layer of the class activation map methods (default: the last one with
        feature maps).
      images: test images explained.
      metrics: also score the methods and write the table and the contact sheets.
      seed: seeds SmoothGrad's noise and the metrics' perturbations.
      sheet: images on each side (most / least faithful) of a contact sheet.

    Returns:
      The paths written.

    Raises:
      ValueError: unknown methods (listing them), a bad layer or image count.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--method must name methods from {', '.join(METHODS)}, got "
                         f"{', '.join(unknown) or 'none'}.")
    test = run.test_data
    if not 1 <= images <= len(test):
        raise ValueError(f"--images must be in [1, {len(test)}], got {images}.")
    model, variables, out = run.model, run.variables, as_path(out)
    if layer is None:
        spatial = [n for n, s in activation_shapes(model).items() if len(s) == 4 and n != "input"]
        layer = spatial[-1] if spatial else None
    x, labels = unit_float(np.asarray(test.images[:images])), np.asarray(test.labels[:images])
    key = jax.random.key(seed)
    comparison = None
    if metrics:  # the comparison explains every image once; its maps are written below
        comparison = compare_attributions(model, variables, x, methods=tuple(methods),
                                          layer=layer, key=key, show=False)
        maps = comparison.maps
    else:
        maps = {method: np.asarray(attribute(
            model, variables, x, method=method, layer=layer if METHODS[method][1] else None,
            **({"key": key} if method == "smoothgrad" else {}))) for method in methods}
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, labels=labels, **maps)
    write_atomically(out / "maps.npz", buffer.getvalue())
    written = [out / "maps.npz"]
    titles = [f"label {int(label)}" for label in labels]
    for method, method_maps in maps.items():
        written.append(plot.save_figure(plot.overlay(x, method_maps, titles), out / f"{method}.png"))
    if comparison is not None:
        written += _write_metrics(comparison, x, layer, out, sheet)
    return written


def _write_metrics(comparison, x, layer, out, sheet) -> list:
    """metrics.json, metrics.png and one contact sheet per method."""
    write_atomically(out / "metrics.json",
                     json.dumps({"images": len(x), "layer": layer,
                                 "table": comparison.table}, indent=2).encode())
    written = [out / "metrics.json", plot.save_figure(comparison.figure, out / "metrics.png")]
    count = min(sheet, len(x) // 2) or 1
    for method, maps in comparison.maps.items():
        auc = comparison.scores[method]["deletion"]
        order = np.argsort(auc)  # low deletion AUC: the most faithful map
        picks = np.concatenate([order[:count], order[-count:]])
        titles = [f"{'most' if i < count else 'least'} faithful: deletion {auc[j]:.3f}"
                  for i, j in enumerate(picks)]
        figure = plot.overlay(x[picks], maps[picks], titles)
        written.append(plot.save_figure(figure, out / f"faithful_{method}.png"))
    return written
