"""Writes the Colab notebooks of this folder from the cell sources below (no outputs).

Command:
    python experiments/notebooks/build_notebooks.py
Edit the cells here and rerun, so the notebooks stay reviewable as plain Python. Every
notebook has: an install cell (pip-installs jaxcnn from REPO_URL only when it is not
importable, which assumes the project is published there), a cell tagged "parameters"
(`QUICK = False`; tests/test_notebooks.py injects `QUICK = True` after it for a tiny
offline run), then the tutorial.
"""
from __future__ import annotations

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent
REPO_URL = "https://github.com/jaxcnn/jaxcnn"
COLAB = "https://colab.research.google.com/github/jaxcnn/jaxcnn/blob/main/experiments/notebooks"

INSTALL = f'''# Installs jaxcnn only when it is missing (Colab); a local checkout is used as it is.
# The URL assumes the project is published at {REPO_URL}.
import importlib.util

REPO_URL = "{REPO_URL}"
if importlib.util.find_spec("jaxcnn") is None:
    %pip install -q "jaxcnn @ git+{{REPO_URL}}"'''


def header(name: str, title: str, text: str) -> list:
    """Title, Colab link and the install cell."""
    return [new_markdown_cell(f"# {title}\n\n[Open in Colab]({COLAB}/{name}.ipynb) (the link "
                              f"assumes jaxcnn is published at {REPO_URL}).\n\n{text}"),
            new_code_cell(INSTALL)]


def parameters(extra: str = "") -> list:
    """The parameter cell the test overrides."""
    source = "QUICK = False  # True: a tiny run (the test suite sets it)" + extra
    return [new_code_cell(source, metadata={"tags": ["parameters"]})]


def quick_tour() -> list:
    return header("quick_tour", "jaxcnn: a quick tour", "Build LeNet-5, train it on the "
                  "handwritten digits that ship with jaxcnn, and look inside: feature maps, "
                  "filters, class images and Grad-CAM.") + parameters() + [
        new_code_cell('''%matplotlib inline
import jax
import jaxcnn
from jaxcnn import data, models, viz

EPOCHS, STEPS = (2, 16) if QUICK else (30, 256)
print(jax.devices())'''),
        new_markdown_cell("## Build\n`models.create` builds a Flax module; `jaxcnn.summary` "
                          "lists its layers, parameters and FLOPs without allocating anything."),
        new_code_cell('''model = models.create("lenet5", num_classes=10)
print(jaxcnn.summary(model))'''),
        new_markdown_cell("## Data\nThe UCI digits (8x8, 1,797 images) ship inside the "
                          "package; `image_size=32` resizes them to LeNet-5's input."),
        new_code_cell('''train = data.load("digits", "train", image_size=32)
test = data.load("digits", "test", image_size=32)
viz.plot.image_grid(test.images[:16], [str(l) for l in test.labels[:16]])'''),
        new_markdown_cell("## Train\n`jaxcnn.fit` compiles one train step with `jaxcnn.jit` "
                          "and returns the state and one record per epoch."),
        new_code_cell('''state, history = jaxcnn.fit(model, train, test, epochs=EPOCHS, batch_size=32,
                            learning_rate=3e-3, schedule="cosine", seed=0, progress=False)
variables = state.variables()
print(f"test accuracy {history[-1]['eval_accuracy']:.4f}")'''),
        new_markdown_cell("## Look inside\nFeature maps of one digit, what the conv2 filters "
                          "respond to, the image each class likes best, and where the "
                          "network looks (Grad-CAM)."),
        new_code_cell('''maps = viz.feature_maps(model, variables, test.images[:1], ["conv1", "pool1", "conv2", "pool2"])
viz.plot.feature_map_grid({name: m[0] for name, m in maps.items()}, cmap="gray")'''),
        new_code_cell('''filters = viz.visualize_filters(model, variables, "conv2", key=jax.random.key(0), steps=STEPS)
viz.plot.image_grid(filters.images, [f"conv2[{c}]" for c in filters.indices])'''),
        new_code_cell('''classes = viz.visualize_class(model, variables, key=jax.random.key(0), steps=STEPS)
viz.plot.image_grid(classes.images, [f"class {c}" for c in classes.indices], ncols=5)'''),
        new_code_cell('''heat = viz.gradcam(model, variables, test.images[:4], "conv2")
viz.plot.overlay(test.images[:4], heat, [f"label {l}" for l in test.labels[:4]])'''),
    ]


def visualization() -> list:
    return header("visualization", "Filter and class visualization", "Train a small VGG "
                  "on the embedded `shapes` dataset (8 classes of coloured shapes), then "
                  "render what its filters respond to, layer by layer, and the image it finds "
                  "most like each class (gradient ascent, Lucid style).") + parameters() + [
        new_code_cell('''%matplotlib inline
import jax
import jaxcnn
from jaxcnn import data, models, viz

EPOCHS, STEPS, FILTERS = (1, 16, 4) if QUICK else (10, 256, 8)
train, test = data.load("shapes", "train"), data.load("shapes", "test")
# Narrow, with BatchNorm and without dropout: trains from scratch in a few epochs.
model = models.create("vgg11_bn", widths=(16, 32, 64, 64, 64), fc_width=128, dropout_rate=0.0,
                      num_classes=train.num_classes, input_shape=train.image_shape)
state, history = jaxcnn.fit(model, train, test, epochs=EPOCHS, batch_size=64,
                            learning_rate=3e-3, schedule="cosine", seed=0, progress=False)
variables = state.variables()
print(f"test accuracy {history[-1]['eval_accuracy']:.3f}")'''),
        new_markdown_cell("## Filters\nEach picture maximizes the mean activation of one "
                          "filter, starting from random noise in a decorrelated Fourier "
                          "space; all filters of a layer render in one compiled call."),
        new_code_cell('''for layer in ["block1_conv1", "block3_conv2", "block5_conv2"]:
    result = viz.visualize_filters(model, variables, layer, range(FILTERS),
                                   key=jax.random.key(0), steps=STEPS)
    display(viz.plot.image_grid(result.images, [f"{layer}[{c}]" for c in result.indices],
                                title=layer))'''),
        new_markdown_cell("## Classes\nThe image that maximizes each class logit, with an "
                          "L2 penalty keeping it close to grey (Simonyan et al. 2013)."),
        new_code_cell('''classes = viz.visualize_class(model, variables, key=jax.random.key(0), steps=STEPS)
viz.plot.image_grid(classes.images, [data.shapes.CLASS_NAMES[c] for c in classes.indices], ncols=4)'''),
        new_markdown_cell("## Attribution\nSaliency (pixel gradients) and Grad-CAM on test images."),
        new_code_cell('''images = test.images[:4]
titles = [data.shapes.CLASS_NAMES[l] for l in test.labels[:4]]
display(viz.plot.overlay(images, viz.saliency(model, variables, images), titles))
viz.plot.overlay(images, viz.gradcam(model, variables, images, "block4_conv2"), titles)'''),
    ]


def multi_device() -> list:
    return header("multi_device", "Multi-device training", "The same training with `jit` "
                  "(one device), `pmap` and `sharded` (every device). On a Colab TPU or GPU "
                  "runtime it uses the accelerators; on a CPU runtime XLA is asked for 8 "
                  "host devices, so every code path runs anywhere.") + parameters() + [
        new_code_cell('''import os

# Read by XLA when JAX starts, so it must come before `import jax`; it only affects
# the CPU backend (TPU and GPU runtimes use their own devices).
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
%matplotlib inline
import jax
import matplotlib.pyplot as plt
import numpy as np
import jaxcnn
from jaxcnn import data, models

EPOCHS = 2 if QUICK else 10
print(jax.device_count(), "devices:", jax.devices())'''),
        new_markdown_cell("The global batch is split over the devices, so it must divide "
                          "evenly (64 works for 1, 2, 4 or 8 devices). SGD with momentum: "
                          "Adam turns rounding-level gradient differences into full steps."),
        new_code_cell('''train = data.load("digits", "train", image_size=32)
test = data.load("digits", "test", image_size=32)
model = models.create("lenet5", num_classes=10)
params, speed = {}, {}
for strategy in ["jit", "pmap", "sharded"]:
    state, history = jaxcnn.fit(model, train, test, epochs=EPOCHS, batch_size=64,
                                optimizer="momentum", learning_rate=0.05, seed=0,
                                strategy=strategy, progress=False)
    params[strategy] = jax.device_get(state.params)
    speed[strategy] = train.num_batches(64, drop_remainder=True) * 64 / history[-1]["seconds"]
    print(f"{strategy:8s} {speed[strategy]:8.0f} images/s, test accuracy {history[-1]['eval_accuracy']:.4f}")'''),
        new_code_cell('''for strategy in ["pmap", "sharded"]:
    diff = max(float(np.abs(a - b).max() / np.abs(b).max())
               for a, b in zip(jax.tree.leaves(params[strategy]), jax.tree.leaves(params["jit"])))
    print(f"max relative parameter difference {strategy} vs jit: {diff:.1e}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(list(speed), list(speed.values()))
ax.set_ylabel("images/s (last epoch)")
ax.set_title(f"LeNet-5 on {jax.device_count()} {jax.devices()[0].platform} devices")
plt.show()'''),
    ]


NOTEBOOKS = {"quick_tour": quick_tour, "visualization": visualization, "multi_device": multi_device}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(cells=cells(), metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}, "accelerator": "GPU" if name == "multi_device" else "None"})
        for i, cell in enumerate(notebook.cells):
            cell["id"] = f"{name}-{i}"  # stable ids: rebuilding gives identical files
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / f"{name}.ipynb")
        print(f"wrote {HERE / f'{name}.ipynb'}")


if __name__ == "__main__":
    main()
