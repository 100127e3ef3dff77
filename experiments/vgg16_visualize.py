"""VGG-16 from the inside, as in seed 004 section 6: feature maps, filters and classes.

Three figures: the feature maps of one image at the first convolution of every block;
the patterns the filters of block1_conv2, block2_conv2, block3_conv3, block4_conv3 and
block5_conv3 respond to most (gradient ascent in a decorrelated Fourier space with
random jitter, `jaxcnn.viz.visualize_filters`); and an image per class that the network
finds most like that class (`jaxcnn.viz.visualize_class`).

With the real ImageNet VGG-16 (keras.applications' file, 528 MiB, downloaded once into
$JAXCNN_CACHE/weights and checked against Keras' published md5), or a weights file:
    python experiments/vgg16_visualize.py --weights imagenet
    python experiments/vgg16_visualize.py --weights vgg16.safetensors   # or .h5/.npz
The weights' preprocessing (caffe for Keras files: BGR, 0-255, mean off; torchvision's
mean/std for .safetensors/.npz) is part of the model, so every picture stays an image in
[0, 1]. Expect, as in seed 004: block1 filters are colours and oriented edges, block2-3
textures, block4-5 object parts (eyes, fur, feathers); the class images show goldfish,
flamingo, retriever, tabby and strawberry patterns tiled over the canvas, and the
photo's top classes are printed (decode_predictions). Best on a GPU/TPU: 8 filters of 5
layers and 5 classes at 224x224, 256 steps each.
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

FILTER_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
MAP_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# goldfish, flamingo, golden retriever, tabby, strawberry
IMAGENET_CLASSES = (1, 130, 207, 281, 949)


def imagenet_model(weights, **fields):
    """VGG-16 with ImageNet weights: "imagenet", a `models.WeightsSource` or a weights file.

    Args:
      weights: what `models.create("vgg16", weights=...)` takes.
      **fields: other model fields (the tests build a narrow VGG-16 this way).

    Returns:
      (model, variables, {class index: name} of IMAGENET_CLASSES).
    """
    model = models.create("vgg16", weights=weights, **fields)
    variables = model.init(jax.random.key(0), jnp.zeros((1, *model.input_shape), jnp.float32))
    names = models.imagenet_classes()
    return model, variables, {i: names[i][1] for i in IMAGENET_CLASSES}


def trained_small_model(epochs: int, seed: int):
    """A narrow VGG-16 trained on `shapes`; returns (model, variables, class names, test set).

    BatchNorm (torchvision's vgg16_bn layout, same layer names) lets this 16-layer network
    train from scratch in a few epochs, and so does leaving out the dropout: 50% dropout on
    its 128-unit head keeps it near chance (0.26 test accuracy after 2 epochs, 0.93 without).
    """
    train, test = data.load("shapes", "train"), data.load("shapes", "test")
    model = models.VGG(depth=16, batch_norm=True, widths=(16, 32, 64, 64, 64), fc_width=128,
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


def draw(model, variables, classes: dict[int, str], image: np.ndarray, out: pathlib.Path,
         filters: int, steps: int, seed: int) -> None:
    """Writes feature_maps.png, filters.png and classes.png of `model` into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    maps = viz.feature_maps(model, variables, image[None], MAP_LAYERS)
    viz.plot.feature_map_grid({k: np.asarray(v[0]) for k, v in maps.items()},
                              path=out / "feature_maps.png")
    images, titles = filter_rows(model, variables, filters, steps, seed)
    viz.plot.image_grid(images, titles, ncols=filters, title="VGG-16 filters",
                        path=out / "filters.png")
    result = viz.visualize_class(model, variables, list(classes), key=jax.random.key(seed),
                                 steps=steps)
    logits = np.asarray(result.max_activation)
    viz.plot.image_grid(result.images, [f"{classes[int(i)]}: {v:.1f}" for i, v in
                                        zip(result.indices, logits)], ncols=len(classes),
                        cell=2.0, title="VGG-16 class visualization", path=out / "classes.png")
    print("largest class logits: " + ", ".join(f"{classes[int(i)]} {v:.1f}"
                                               for i, v in zip(result.indices, logits)))
    print(f"wrote {out / 'feature_maps.png'}, {out / 'filters.png'} and {out / 'classes.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="'imagenet' (downloaded once) or a weights file: "
                        "Keras .h5, torchvision .npz/.safetensors (default: train a small "
                        "VGG-16 on shapes)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the offline model")
    parser.add_argument("--filters", type=int, default=8, help="filters shown per layer")
    parser.add_argument("--steps", type=int, default=256, help="gradient-ascent steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="vgg16_visualize")
    parser.add_argument("--quick", action="store_true", help="offline, 1 epoch, 16 steps")
    args = parser.parse_args()
    if args.quick:
        args.weights, args.epochs, args.filters, args.steps = None, 1, 4, 16
    if args.weights:
        model, variables, classes = imagenet_model(args.weights)
        image = photo(model.input_shape[0])
        top = models.decode_predictions(model.apply(variables, image[None]), top=3)[0]
        print("the photo: " + ", ".join(f"{name} {p:.2f}" for _, name, p in top))
    else:
        model, variables, classes, test = trained_small_model(args.epochs, args.seed)
        image = test.images[0]
    draw(model, variables, classes, image, pathlib.Path(args.out_dir), args.filters,
         args.steps, args.seed)


if __name__ == "__main__":
    main()
