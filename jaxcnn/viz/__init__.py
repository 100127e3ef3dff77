"""Looking inside a CNN: feature maps, filter and class visualization, attribution, plots.

The ascent is Lucid's `optvis` split into small pure pieces, without a global graph:
`objectives` (what to maximize, composable with + - *), `param` (how the image is
parameterized), `transform` (random robustness transforms), `render` (the whole ascent in
one compiled call; every filter of a layer in one call). `attribution` explains
predictions (saliency, SmoothGrad, guided backprop, input x gradient, Grad-CAM,
Grad-CAM++, LayerCAM, Score-CAM), `integrated` by integrated gradients with their
completeness check,
`perturbation` by occlusion (the logit drop under a sliding window);
`explain.attribute(method=...)` runs any of them and returns maps to overlay; `metrics`
says which to trust (deletion and insertion AUC, infidelity, max-sensitivity), `sanity` whether a method
describes the model at all (model randomization), `compare` a table of methods x
metrics. `features`
reads feature maps and filter weights, `plot` draws all of it with matplotlib.
"""
from jaxcnn.viz import (attribution, compare, explain, features, integrated, metrics,
                        objectives, param, perturbation, plot, sanity, transform)
from jaxcnn.viz.attribution import (gradcam, gradcam_plus_plus, guided_backprop,
                                    input_x_gradient, layercam, saliency, scorecam, smoothgrad)
from jaxcnn.viz.compare import Comparison, compare_attributions
from jaxcnn.viz.explain import attribute
from jaxcnn.viz.features import feature_maps, filter_weights, most_active
from jaxcnn.viz.integrated import IntegratedGradients, integrated_gradients
from jaxcnn.viz.metrics import deletion, infidelity, insertion, max_sensitivity
from jaxcnn.viz.objectives import Objective
from jaxcnn.viz.perturbation import occlusion
from jaxcnn.viz.render import (LayerVisualization, RenderResult, activation_shapes, ascent,
                               filter_render_fn, render, visualize_class, visualize_filters)
from jaxcnn.viz.sanity import model_randomization

__all__ = ["Comparison", "IntegratedGradients", "LayerVisualization", "Objective",
           "RenderResult", "activation_shapes", "ascent", "attribute", "attribution",
           "compare", "compare_attributions", "deletion", "explain", "feature_maps",
           "features", "filter_render_fn", "filter_weights", "gradcam", "gradcam_plus_plus",
           "guided_backprop", "infidelity", "input_x_gradient", "insertion", "integrated",
           "integrated_gradients", "layercam", "max_sensitivity", "metrics",
           "model_randomization", "most_active", "objectives", "occlusion", "param",
           "perturbation", "plot", "render", "saliency", "sanity", "scorecam", "smoothgrad",
           "transform", "visualize_class", "visualize_filters"]
