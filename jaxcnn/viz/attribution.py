"""Which pixels decide a prediction: vanilla-gradient saliency, SmoothGrad and Grad-CAM.

Contract: each function takes a model, its variables and an NHWC batch, explains the
logit of `class_index` (an int, one int per image, or None for the predicted class), and
returns one non-negative (N, H, W) map per image, scaled to [0, 1] per image. Each is
jitted; arguments are checked before compilation.

- `saliency`: max over channels of |d logit / d pixel| (Simonyan et al. 2013).
- `smoothgrad`: the same, averaged over noisy copies of the image (Smilkov et al. 2017).
- `guided_backprop`: the gradient through ReLUs that pass back only positive gradients
  (Springenberg et al. 2015); fails the model-randomization check (see its docstring).
- `input_x_gradient`: pixel times gradient, signed, per channel (Shrikumar et al. 2016);
  the signed methods return (N, H, W, C) attributions, not [0, 1] maps.
- `gradcam`: ReLU of the activations of a conv layer weighted by the spatial mean of
  their gradients (Selvaraju et al. 2017); `gradcam_plus_plus`, `layercam` and `scorecam`
  weight them as their papers say (see each); all are placed on the image by the layer's receptive
  fields: unit i is drawn at the centre of the input pixels it sees, so maps of layers
  after VALID convolutions (which lose a border) are not shifted toward the edges, as a
  plain resize would do. Models without `spatial_layers()` get the plain resize.
"""
from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn import compiler
from jaxcnn.data.arrays import unit_float
from jaxcnn.layers import guided_relus
from jaxcnn.models.base import offset_activations
from jaxcnn.models.receptive import receptive_field
from jaxcnn.viz.render import activation_shapes
from jaxcnn.viz.transform import sample_bilinear


def _normalize(maps: jax.Array) -> jax.Array:
    """Scales each map to [0, 1] by its maximum (an all-zero map stays zero)."""
    peak = maps.reshape(maps.shape[0], -1).max(axis=1)
    return maps / jnp.maximum(peak, 1e-12)[:, None, None]


def target_classes(model, variables, images, class_index) -> jax.Array:
    """(N,) class per image: the given one(s), or the model's prediction."""
    if class_index is None:
        return jnp.argmax(model.apply(variables, images), axis=-1)
    return jnp.broadcast_to(jnp.asarray(class_index, jnp.int32), images.shape[:1])


def class_scores(scores: jax.Array, classes: jax.Array) -> jax.Array:
    """(N,) the score (logit, probability) of each row's class in (N, classes) `scores`."""
    return jnp.take_along_axis(scores, classes[:, None], axis=1)[:, 0]


def check_images(model, images, class_index) -> None:
    """Refuses, before compiling, images of the wrong shape and classes out of range."""
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(model.input_shape):
        raise ValueError(f"images must have shape (N, {', '.join(map(str, model.input_shape))}), "
                         f"got {tuple(images.shape)}.")
    if class_index is not None:
        index = jnp.asarray(class_index)
        if not jnp.issubdtype(index.dtype, jnp.integer) or index.ndim > 1 or (
                index.ndim == 1 and index.shape[0] != images.shape[0]):
            raise ValueError(f"class_index must be None, an int or one int per image, got "
                             f"{class_index!r} for {images.shape[0]} images.")
        if bool(jnp.any((index < 0) | (index >= model.num_classes))):
            raise ValueError(f"class_index {class_index!r} is out of range: expected 0 <= "
                             f"index < {model.num_classes} (num_classes).")


def _pixel_gradients(model, variables, images, classes) -> jax.Array:
    def score(x):
        logits = model.apply(variables, x)
        return class_scores(logits, classes).sum()

    return jax.grad(score)(images)


@compiler.jit(static_argnums=0)
def _saliency(model, variables, images, class_index):
    classes = target_classes(model, variables, images, class_index)
    grads = _pixel_gradients(model, variables, images, classes)
    return _normalize(jnp.abs(grads).max(axis=-1))


def saliency(model: nn.Module, variables, images: jax.Array, class_index=None) -> jax.Array:
    """Vanilla-gradient saliency maps (Simonyan, Vedaldi and Zisserman 2014, "Deep Inside
    Convolutional Networks: Visualising Image Classification Models and Saliency Maps").

    Args:
      model: a jaxcnn model.
      variables: its variables.
      images: (N, H, W, C) batch.
      class_index: class to explain; None for the predicted class.

    Returns:
      (N, H, W) maps in [0, 1].
    """
    check_images(model, images, class_index)
    return _saliency(model, variables, unit_float(jnp.asarray(images)), class_index)


@compiler.jit(static_argnums=0)
def _input_x_gradient(model, variables, images, class_index):
    classes = target_classes(model, variables, images, class_index)
    return images * _pixel_gradients(model, variables, images, classes)


def input_x_gradient(model: nn.Module, variables, images: jax.Array, class_index=None) -> jax.Array:
    """Input x gradient (Shrikumar et al. 2016, "Not Just a Black Box"): each pixel value
    times the logit's gradient with respect to it, signed, per channel.

    Args:
      model, variables, images, class_index: as in `saliency`.

    Returns:
      (N, H, W, C) attributions (`integrated.heatmap` makes overlayable maps of them).
    """
    check_images(model, images, class_index)
    return _input_x_gradient(model, variables, unit_float(jnp.asarray(images)), class_index)


@compiler.jit(static_argnums=0)
def _guided_backprop(model, variables, images, class_index):
    classes = target_classes(model, variables, images, class_index)
    with guided_relus():
        return _pixel_gradients(model, variables, images, classes)


def guided_backprop(model: nn.Module, variables, images: jax.Array, class_index=None) -> jax.Array:
    """Guided backpropagation (Springenberg et al. 2015, "Striving for Simplicity: The All
    Convolutional Net"): the input gradient with every ReLU passing back only positive
    gradients where its input was positive.

    Its maps look sharp but say little about the model: they barely change when the
    model's weights are re-initialised layer after layer (Adebayo et al. 2018, "Sanity
    Checks for Saliency Maps"), i.e. it fails the model-randomization check; prefer
    integrated gradients or Grad-CAM to learn what the model uses.

    Args:
      model, variables, images, class_index: as in `saliency` (the model's ReLUs must be
        `layers.Activation("relu")`, as in every jaxcnn model).

    Returns:
      (N, H, W, C) signed gradients (`integrated.heatmap` makes overlayable maps).
    """
    check_images(model, images, class_index)
    return _guided_backprop(model, variables, unit_float(jnp.asarray(images)), class_index)


@compiler.jit(static_argnums=(0, 5))
def _smoothgrad(model, variables, images, class_index, key, samples, noise):
    classes = target_classes(model, variables, images, class_index)
    sigma = noise * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))

    def one(k):
        noisy = images + sigma[:, None, None, None] * jax.random.normal(k, images.shape)
        return jnp.abs(_pixel_gradients(model, variables, noisy, classes)).max(axis=-1)

    return _normalize(jax.lax.map(one, jax.random.split(key, samples)).mean(axis=0))


def smoothgrad(model: nn.Module, variables, images: jax.Array, class_index=None, *,
               key: jax.Array, samples: int = 32, noise: float = 0.15) -> jax.Array:
    """SmoothGrad (Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise"):
    saliency averaged over `samples` noisy copies of each image.

    Args:
      model, variables, images, class_index: as in `saliency`.
      key: draws the noise.
      samples: noisy copies per image.
      noise: noise standard deviation as a fraction of each image's value range.

    Returns:
      (N, H, W) maps in [0, 1].
    """
    check_images(model, images, class_index)
    if samples < 1 or noise < 0:
        raise ValueError(f"need samples >= 1 and noise >= 0, got samples={samples}, noise={noise}.")
    return _smoothgrad(model, variables, unit_float(jnp.asarray(images)), class_index, key, samples, noise)


def _unit_centres(model, layer: str, feature_size: int, image_size: int) -> tuple[float, float]:
    """(input pixel under unit 0's field centre, pixels between units) of `layer`."""
    if hasattr(model, "spatial_layers"):
        field = receptive_field(model)[layer]
        return field.start + (field.size - 1) / 2.0, float(field.jump)
    jump = image_size / feature_size  # plain resize: the map stretched over the image
    return (jump - 1) / 2.0, jump


def _place(cam: jax.Array, first: float, jump: float, image_hw: tuple[int, int]) -> jax.Array:
    """Samples (N, h, w) unit maps at every image pixel, bilinearly between unit centres."""
    ys = (jnp.arange(image_hw[0], dtype=jnp.float32) - first) / jump
    xs = (jnp.arange(image_hw[1], dtype=jnp.float32) - first) / jump
    grid_y, grid_x = jnp.meshgrid(ys, xs, indexing="ij")
    return jax.vmap(lambda m: sample_bilinear(m[..., None], grid_y, grid_x)[..., 0])(cam)


def _gradcam_weights(acts: jax.Array, grads: jax.Array) -> jax.Array:
    """Grad-CAM: each channel weighted by the spatial mean of its gradient."""
    return grads.mean(axis=(1, 2), keepdims=True) * acts


def _gradcam_plus_plus_weights(acts: jax.Array, grads: jax.Array) -> jax.Array:
    """Grad-CAM++: channel weights sum_ij alpha_ij relu(g_ij), with the paper's closed form
    alpha = g^2 / (2 g^2 + sum_ab A_ab g^3) (its eq. 19 for an exponential of the score)."""
    g2 = grads * grads
    denominator = 2 * g2 + acts.sum(axis=(1, 2), keepdims=True) * g2 * grads
    alpha = jnp.where(grads != 0, g2 / jnp.where(denominator != 0, denominator, 1.0), 0.0)
    return (alpha * jax.nn.relu(grads)).sum(axis=(1, 2), keepdims=True) * acts


def _layercam_weights(acts: jax.Array, grads: jax.Array) -> jax.Array:
    """LayerCAM: every position weighted by its own positive gradient."""
    return jax.nn.relu(grads) * acts


CAMS = {"gradcam": _gradcam_weights, "gradcam_plus_plus": _gradcam_plus_plus_weights,
        "layercam": _layercam_weights}


@compiler.jit(static_argnums=(0, 4, 5, 6, 7))
def _cam(model, variables, images, class_index, layer, first, jump, kind):
    classes = target_classes(model, variables, images, class_index)
    _, acts = model.apply(variables, images, capture_activations=True)
    zero = jnp.zeros_like(acts[layer])

    def score(offset):
        with offset_activations({layer: offset}):
            logits, _ = model.apply(variables, images, capture_activations=True)
        return class_scores(logits, classes).sum()

    grads = jax.grad(score)(zero)
    cam = jax.nn.relu(CAMS[kind](acts[layer], grads).sum(axis=-1))
    return _normalize(_place(cam, first, jump, images.shape[1:3]))


@compiler.jit(static_argnums=(0, 4, 5, 6, 7))
def _scorecam(model, variables, images, class_index, layer, first, jump, chunk):
    classes = target_classes(model, variables, images, class_index)
    _, acts = model.apply(variables, images, capture_activations=True)
    channels = jnp.moveaxis(acts[layer], -1, 0)  # (C, N, h, w)
    masks = jax.vmap(lambda a: _place(a, first, jump, images.shape[1:3]))(channels)
    low = masks.min(axis=(2, 3), keepdims=True)
    span = masks.max(axis=(2, 3), keepdims=True) - low
    masks = jnp.where(span > 0, (masks - low) / jnp.where(span > 0, span, 1.0), 0.0)

    def scores(mask):  # (N,) probability of the class with the image seen through one map
        probs = jax.nn.softmax(model.apply(variables, images * mask[..., None]), axis=-1)
        return class_scores(probs, classes)

    count = channels.shape[0]
    padded = jnp.pad(masks, ((0, -count % chunk), (0, 0), (0, 0), (0, 0)))
    score = jax.lax.map(jax.vmap(scores), padded.reshape(-1, chunk, *masks.shape[1:]))
    weights = jax.nn.softmax(score.reshape(-1, images.shape[0])[:count], axis=0)  # (C, N)
    cam = jax.nn.relu(jnp.einsum("cn,nhwc->nhw", weights, acts[layer]))
    return _normalize(_place(cam, first, jump, images.shape[1:3]))


def _class_activation_map(kind, model, variables, images, layer, class_index,
                          chunk=None) -> jax.Array:
    check_images(model, images, class_index)
    shapes = activation_shapes(model)
    spatial = [name for name, shape in shapes.items() if len(shape) == 4 and name != "input"]
    if layer not in spatial:
        problem = "has no spatial extent" if layer in shapes else "is not a layer of the model"
        raise ValueError(f"{kind} layer {layer!r} {problem}; layers with feature maps: "
                         f"{', '.join(spatial) or 'none (the model has no spatial layers)'}.")
    first, jump = _unit_centres(model, layer, shapes[layer][1], model.input_shape[0])
    images = unit_float(jnp.asarray(images))
    if kind != "scorecam":
        return _cam(model, variables, images, class_index, layer, first, jump, kind)
    channels = shapes[layer][-1]
    chunk = channels if chunk is None else chunk
    if not isinstance(chunk, int) or not 1 <= chunk <= channels:
        raise ValueError(f"chunk must be an int from 1 to the {channels} channels of "
                         f"{layer!r}, got {chunk!r}.")
    return _scorecam(model, variables, images, class_index, layer, first, jump, chunk)


def gradcam(model: nn.Module, variables, images: jax.Array, layer: str, class_index=None) -> jax.Array:
    """Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks
    via Gradient-based Localization") heat maps of a named conv layer, placed on the image
    by receptive field.

    Args:
      model, variables, images, class_index: as in `saliency`.
      layer: a named activation with spatial extent (N, h, w, C), e.g. "conv2".

    Returns:
      (N, H, W) maps in [0, 1].

    Raises:
      ValueError: an unknown layer (listing the conv-like ones) or a layer without
        spatial extent.
    """
    return _class_activation_map("gradcam", model, variables, images, layer, class_index)


def gradcam_plus_plus(model: nn.Module, variables, images: jax.Array, layer: str,
                      class_index=None) -> jax.Array:
    """Grad-CAM++ (Chattopadhyay et al. 2018, "Grad-CAM++: Improved Visual Explanations for
    Deep Convolutional Networks"): Grad-CAM whose channel weights count only positive
    gradients, each position weighted by the paper's alpha, so several instances of a
    class all light up. Arguments, result and errors as `gradcam`."""
    return _class_activation_map("gradcam_plus_plus", model, variables, images, layer,
                                 class_index)


def layercam(model: nn.Module, variables, images: jax.Array, layer: str,
             class_index=None) -> jax.Array:
    """LayerCAM (Jiang et al. 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps
    for Localization"): every activation weighted by its own positive gradient instead of a
    channel mean, which keeps fine detail on early layers. Arguments, result and errors as
    `gradcam`."""
    return _class_activation_map("layercam", model, variables, images, layer, class_index)


def scorecam(model: nn.Module, variables, images: jax.Array, layer: str, class_index=None, *,
             chunk: int | None = None) -> jax.Array:
    """Score-CAM (Wang et al. 2020, "Score-CAM: Score-Weighted Visual Explanations for
    Convolutional Neural Networks"): no gradients; each channel of the layer, placed on the
    image and scaled to [0, 1], masks the image, and the class probability the model gives
    the masked image (softmax over channels) weights that channel.

    Args:
      model, variables, images, layer, class_index: as in `gradcam`.
      chunk: channels whose masked images are classified at once (default: all); memory
        grows with `chunk` copies of the batch.

    Returns:
      (N, H, W) maps in [0, 1].

    Raises:
      ValueError: as `gradcam`, and a chunk outside [1, channels].
    """
    return _class_activation_map("scorecam", model, variables, images, layer, class_index,
                                 chunk)

