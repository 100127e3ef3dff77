"""One entry point to every attribution method: `attribute(..., method=NAME)`.

Contract: `attribute(model, variables, images, class_index, method=..., layer=...,
**options)` runs the named method of `jaxcnn.viz` with its own options and returns
(N, H, W) maps in [0, 1], whatever the method returns itself: signed attributions (input
x gradient, guided backprop, integrated gradients, occlusion) become `integrated.heatmap`
maps, so every method plots with `plot.overlay`. The class activation maps need `layer` (a named
activation with feature maps); the others refuse one.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax

from jaxcnn.viz.attribution import (gradcam, gradcam_plus_plus, guided_backprop,
                                    input_x_gradient, layercam, saliency, scorecam, smoothgrad)
from jaxcnn.viz.integrated import heatmap, integrated_gradients
from jaxcnn.viz.perturbation import occlusion

# name -> (function, takes a layer, returns signed attributions to turn into a heatmap)
METHODS: dict[str, tuple[Callable, bool, bool]] = {
    "saliency": (saliency, False, False),
    "smoothgrad": (smoothgrad, False, False),
    "input_x_gradient": (input_x_gradient, False, True),
    "guided_backprop": (guided_backprop, False, True),
    "integrated_gradients": (lambda *a, **k: integrated_gradients(*a, **k).attributions,
                             False, True),
    "occlusion": (occlusion, False, True),
    "gradcam": (gradcam, True, False),
    "gradcam_plus_plus": (gradcam_plus_plus, True, False),
    "layercam": (layercam, True, False),
    "scorecam": (scorecam, True, False),
}


def attribute(model: nn.Module, variables, images: jax.Array, class_index=None, *,
              method: str, layer: str | None = None, **options) -> jax.Array:
    """Explains the logit of `class_index` with the attribution method `method`.

    Args:
      model: a jaxcnn model.
      variables: its variables.
      images: (N, H, W, C) batch, any channel count, float in [0, 1] or uint8.
      class_index: class to explain; an int, one per image, or None for the predicted one.
      method: one of METHODS.
      layer: the layer of a class activation map (gradcam, gradcam_plus_plus, layercam,
        scorecam).
      **options: the method's own keyword arguments (e.g. `steps=` of integrated
        gradients, `window=` of occlusion, `key=` of smoothgrad).

    Returns:
      (N, H, W) maps in [0, 1].

    Raises:
      ValueError: an unknown method (listing them), a missing or unexpected layer, and
        whatever the method refuses.
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; use one of "
                         f"{', '.join(METHODS)}.")
    function, takes_layer, signed = METHODS[method]
    if takes_layer and layer is None:
        raise ValueError(f"method {method!r} maps a layer: pass layer=, the name of an "
                         "activation with feature maps (e.g. the last conv layer).")
    if not takes_layer and layer is not None:
        layered = ", ".join(name for name, entry in METHODS.items() if entry[1])
        raise ValueError(f"method {method!r} explains the input pixels and takes no layer; "
                         f"the layer methods are {layered}.")
    args = (model, variables, images, layer) if takes_layer else (model, variables, images)
    maps = function(*args, class_index, **options)
    return heatmap(maps) if signed else maps
