"""Pictures of a trained run (`jaxcnn.runs.load_run`), as `jaxcnn visualize` writes them.

Contract: `write_pictures` renders one kind of picture and saves PNGs (and GIFs) under an
output folder (local or remote, e.g. gs://), returning the paths. Every random choice comes from `seed`.
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import jax
import numpy as np
from etils import epath

from jaxcnn.paths import as_path
from jaxcnn.runs import Run
from jaxcnn.viz import plot
from jaxcnn.viz import transform as T
from jaxcnn.viz.attribution import gradcam, saliency, smoothgrad
from jaxcnn.viz.features import feature_maps, filter_weights, most_active
from jaxcnn.viz.render import activation_shapes, visualize_class, visualize_filters

KINDS = ("feature-maps", "filters", "classes", "saliency", "gradcam")


def spatial_layers(model) -> list[str]:
    """Named activations with a feature map (N, h, w, C), in network order."""
    return [name for name, shape in activation_shapes(model).items()
            if len(shape) == 4 and name != "input"]


def write_pictures(run: Run, what: str, out: str | pathlib.Path, *, layers: Sequence[str] = (),
                   channels: Sequence[int] | None = None, count: int = 8, most: bool = False,
                   index: int = 0, images: int = 4, steps: int = 256, seed: int = 0,
                   gif: bool = False) -> list[epath.Path]:
    """Renders one kind of picture of `run` into `out`.

    Args:
      run: from `load_run`.
      what: one of `KINDS`.
      out: output folder (created).
      layers: layer names; defaults: every feature map (feature-maps), the first
        (filters), the last (gradcam).
      channels: filters to render (filters); default all.
      count: feature maps per layer (feature-maps).
      most: show the most active feature maps instead of the first (feature-maps).
      index: test image to look at (feature-maps).
      images: number of test images explained (saliency, gradcam).
      steps: ascent steps (filters, classes).
      seed: seeds the ascent and SmoothGrad.
      gif: also write a GIF of the ascent (filters, classes).

    Returns:
      The paths written.

    Raises:
      ValueError: unknown kind or layer, out-of-range channel or image index.
    """
    if what not in KINDS:
        raise ValueError(f"--what must be one of {', '.join(KINDS)}, got {what!r}.")
    out = as_path(out)  # a local folder or a remote one (gs://...)
    model, variables, test = run.model, run.variables, run.test_data
    key = jax.random.key(seed)
    spatial = spatial_layers(model)
    for layer in layers:
        if layer not in spatial:
            raise ValueError(f"unknown layer {layer!r} for --layer; layers with feature maps: "
                             f"{', '.join(spatial)}.")
    if not 0 <= index < len(test) or not 1 <= images <= len(test):
        raise ValueError(f"--index must be in [0, {len(test)}) and --images in [1, {len(test)}], "
                         f"got {index} and {images}.")
    x, labels = test.images[:images], test.labels[:images]
    titles = [f"label {int(y)}" for y in labels]
    if what == "feature-maps":
        chosen = list(layers) or spatial
        maps = {k: np.asarray(v[0]) for k, v in feature_maps(model, variables, test.images[index:index + 1],
                                                              chosen).items()}
        picks = {k: most_active(m, count) for k, m in maps.items()} if most else None
        return [plot.save_figure(plot.feature_map_grid(maps, picks, count=count), out / "feature_maps.png")]
    if what == "saliency":
        return [plot.save_figure(plot.overlay(x, saliency(model, variables, x), titles), out / "saliency.png"),
                plot.save_figure(plot.overlay(x, smoothgrad(model, variables, x, key=key), titles),
                       out / "smoothgrad.png")]
    if what == "gradcam":
        layer = layers[0] if layers else spatial[-1]
        return [plot.save_figure(plot.overlay(x, gradcam(model, variables, x, layer), titles),
                       out / f"gradcam_{layer}.png")]
    snaps = tuple(sorted({int(s) for s in np.linspace(0, steps, 9)})) if gif else ()
    options = dict(key=key, steps=steps, transform=T.standard(model.input_shape[0]),
                   snapshot_steps=snaps)
    if what == "filters":
        layer = layers[0] if layers else spatial[0]
        result = visualize_filters(model, variables, layer, channels, **options)
        names = [f"{layer}[{c}]" + (" dead" if c in result.dead else "") for c in result.indices]
        written = [plot.save_figure(plot.image_grid(result.images, names, title=f"filters of {layer}"),
                          out / f"filters_{layer}.png"),
                   plot.save_figure(plot.image_grid(filter_weights(variables), title="first conv layer weights"),
                          out / "weights.png")]
        stem = f"filters_{layer}"
    else:
        result = visualize_class(model, variables, **options)
        names = [f"class {c}: {float(v):.1f}" for c, v in zip(result.indices, result.values[:, -1])]
        written = [plot.save_figure(plot.image_grid(result.images, names, title="class visualization"),
                          out / "classes.png")]
        stem = "classes"
    if gif:
        plot.ascent_gif(np.swapaxes(np.asarray(result.snapshots), 0, 1), out / f"{stem}.gif", names,
                        steps=snaps)
        written.append(out / f"{stem}.gif")
    return written
