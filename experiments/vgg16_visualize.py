"""VGG-16 from the inside, as in seed 004 section 6: feature maps, filters and classes.

Three figures: the feature maps of one image at the first convolution of every block;
the patterns the filters of block1_conv2, block2_conv2, block3_conv3, block4_conv3 and
block5_conv3 respond to most (gradient ascent in a decorrelated Fourier space with
random jitter, `jaxcnn.viz.visualize_filters`); and an image per class that the network
finds most like that class (`jaxcnn.viz.visualize_class`).

With ImageNet weights the user supplies (nothing is downloaded):
    python experiments/vgg16_visualize.py --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5
    python experiments/vgg16_visualize.py --weights vgg16.safetensors   # or .npz, torchvision names
`.h5` files are keras.applications weights (caffe preprocessing: BGR, mean subtracted,
0-255), `.npz`/`.safetensors` are torchvision `state_dict`s (ImageNet mean/std); the
matching preprocessing is built into the model, so every picture stays an image in
[0, 1]. Best on a GPU/TPU: 8 filters of 5 layers and 5 classes at 224x224, 256 steps each.
Offline (no --weights): a narrow VGG-16 with BatchNorm (widths 16-64, fc 128) trained on
the embedded `shapes` at 32x32, then pictured the same way:
    python experiments/vgg16_visualize.py [--quick]   # --quick: 1 epoch, 16 ascent steps
Expected result: `<out-dir>/feature_maps.png`, `<out-dir>/filters.png` (one row per
layer; with ImageNet weights colours and edges in block1, textures and object parts
deeper; the small offline model shows stripes and textures, and the filters that never
activate stay plain grey, with a warning naming them) and `<out-dir>/classes.png`; the printed test accuracy of the offline model (0.966 on
`shapes` after the default 8 epochs, seed 0) and the largest logit each class image reached.
"""
from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook

import jaxcnn
from jaxcnn import data, models, viz
from jaxcnn.models import convert

FILTER_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
MAP_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
IMAGENET_CLASSES = {1: "goldfish", 130: "flamingo", 207: "golden retriever", 281: "tabby cat",
                    949: "strawberry"}
# Input statistics the ImageNet weights were trained with (RGB order).
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class ImageNetVGG(models.VGG):
    """VGG that takes [0, 1] RGB images and applies the preprocessing its weights expect."""

    preprocessing: str = "none"  # "torch", "caffe" (Keras) or "none"

    def __call__(self, x, train: bool = False, capture_activations: bool = False):
        if self.preprocessing == "torch":
            x = (x - jnp.asarray(TORCH_MEAN)) / jnp.asarray(TORCH_STD)
        elif self.preprocessing == "caffe":
            x = x[..., ::-1] * 255.0 - jnp.asarray(CAFFE_MEAN_BGR)
        return super().__call__(x, train, capture_activations)


def imagenet_model(weights: str):
    """VGG-16 with the ImageNet weights of a Keras .h5 or a torchvision .npz/.safetensors file."""
    keras = weights.endswith((".h5", ".hdf5"))
    model = ImageNetVGG(depth=16, preprocessing="caffe" if keras else "torch")
    load = convert.load_keras_weights if keras else convert.load_torch_weights
    variables = load(model, weights)
    return model, variables, dict(IMAGENET_CLASSES)


def trained_small_model(epochs: int, seed: int):
    """A narrow VGG-16 trained on `shapes`; returns (model, variables, class names, test set).

    BatchNorm (torchvision's vgg16_bn layout, same layer names) lets this 16-layer network
    train from scratch in a few epochs, and so does leaving out the dropout: 50% dropout on
    its 128-unit head keeps it near chance (0.26 test accuracy after 2 epochs, 0.93 without).
    """
    train, test = data.load("shapes", "train"), data.load("shapes", "test")
    model = ImageNetVGG(depth=16, batch_norm=True, widths=(16, 32, 64, 64, 64), fc_width=128,
                        dropout_rate=0.0, num_classes=train.num_classes,
                        input_shape=train.image_shape)
    state, history = jaxcnn.fit(model, train, test, epochs=epochs, batch_size=64,
                                learning_rate=3e-3, schedule="cosine", seed=seed, progress=False)
    print(f"small VGG-16 on shapes: test accuracy {history[-1]['eval_accuracy']:.3f}")
    names = dict(enumerate(data.shapes.CLASS_NAMES))
    return model, state.variables(), names, test


def photo(size: int) -> np.ndarray:
    """matplotlib's sample photo (Grace Hopper) as a (size, size, 3) image in [0, 1]."""
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        rgb = plt.imread(f, format="jpg").astype(np.float32) / 255.0
    return data.resize_images(rgb[None], size)[0]


def filter_rows(model, variables, count: int, steps: int, seed: int) -> tuple[np.ndarray, list]:
    """The first `count` filters of each of FILTER_LAYERS, as one (L*count, H, W, 3) stack."""
    images, titles = [], []
    for layer in FILTER_LAYERS:
        result = viz.visualize_filters(model, variables, layer, range(count),
                                       key=jax.random.key(seed), steps=steps)
        images.append(np.asarray(result.images))
        titles += [f"{layer}[{c}]" for c in result.indices]
    return np.concatenate(images), titles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="ImageNet VGG-16 weights: Keras .h5, or torchvision "
                        ".npz/.safetensors (default: train a small VGG-16 on shapes)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the offline model")
    parser.add_argument("--filters", type=int, default=8, help="filters shown per layer")
    parser.add_argument("--steps", type=int, default=256, help="gradient-ascent steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="vgg16_visualize")
    parser.add_argument("--quick", action="store_true", help="offline, 1 epoch, 16 steps")
    args = parser.parse_args()
    if args.quick:
        args.weights, args.epochs, args.filters, args.steps = None, 1, 4, 16
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.weights:
        model, variables, classes = imagenet_model(args.weights)
        image = photo(model.input_shape[0])
    else:
        model, variables, classes, test = trained_small_model(args.epochs, args.seed)
        image = test.images[0]

    maps = viz.feature_maps(model, variables, image[None], MAP_LAYERS)
    viz.plot.feature_map_grid({k: np.asarray(v[0]) for k, v in maps.items()},
                              path=out / "feature_maps.png")
    images, titles = filter_rows(model, variables, args.filters, args.steps, args.seed)
    viz.plot.image_grid(images, titles, ncols=args.filters, title="VGG-16 filters",
                        path=out / "filters.png")
    result = viz.visualize_class(model, variables, list(classes), key=jax.random.key(args.seed),
                                 steps=args.steps)
    logits = np.asarray(result.max_activation)
    viz.plot.image_grid(result.images, [f"{classes[int(i)]}: {v:.1f}" for i, v in
                                        zip(result.indices, logits)], ncols=len(classes),
                        cell=2.0, title="VGG-16 class visualization", path=out / "classes.png")
    print("largest class logits: " + ", ".join(f"{classes[int(i)]} {v:.1f}"
                                               for i, v in zip(result.indices, logits)))
    print(f"wrote {out / 'feature_maps.png'}, {out / 'filters.png'} and {out / 'classes.png'}")


if __name__ == "__main__":
    main()
