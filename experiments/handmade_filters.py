"""Seed 003's table of hand-made filters, applied to a real photo with `jaxcnn.ops.conv2d`.

Identity, three edge detectors, sharpen, box blur, Gaussian blur and the Sobel pair are
each a ready HWIO kernel in `jaxcnn.ops.kernels`; one `conv2d` call applies all of them
at once (the kernels are stacked along the output-channel axis).

Command:
    python experiments/handmade_filters.py [--image PHOTO] [--out handmade_filters.png] [--quick]
Expected result: a 3x3 grid of pictures in handmade_filters.png (by default of Grace
Hopper, the sample photo that ships with matplotlib): the identity reproduces the photo,
the edge detectors light up outlines, sharpen crisps the details, the blurs soften them.
`--quick` uses a 64x64 version of the photo.
"""
from __future__ import annotations

import argparse

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook

from jaxcnn import data, ops

FILTERS = {
    "identity": ops.kernels.identity(),
    "edge detection 1": ops.kernels.edge_detect(1),
    "edge detection 2": ops.kernels.edge_detect(2),
    "edge detection 3": ops.kernels.edge_detect(3),
    "sharpen": ops.kernels.sharpen(),
    "box blur": ops.kernels.box_blur(),
    "gaussian blur": ops.kernels.gaussian_blur(),
    "sobel x": ops.kernels.sobel_x(),
    "sobel y": ops.kernels.sobel_y(),
}


def load_grayscale(path: str | None, size: int | None) -> np.ndarray:
    """Reads a photo as a (1, H, W, 1) float32 grayscale batch in [0, 1].

    Args:
      path: an image file, or None for matplotlib's sample photo.
      size: resize to size x size when given.

    Returns:
      The image batch.
    """
    if path is None:
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            rgb = plt.imread(f, format="jpg")
    else:
        rgb = plt.imread(path)
    rgb = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    gray = rgb[..., :3].mean(axis=-1) if rgb.ndim == 3 else rgb
    batch = gray[None, :, :, None]
    return data.resize_images(batch, size) if size else batch


def apply_all(image: np.ndarray) -> dict[str, np.ndarray]:
    """Convolves the image with every filter in one `conv2d` call ("SAME" keeps the size).

    Args:
      image: (1, H, W, 1) grayscale batch.

    Returns:
      Filter name -> (H, W) response.
    """
    bank = jnp.concatenate(list(FILTERS.values()), axis=-1)  # (3, 3, 1, 9)
    out = np.asarray(ops.conv2d(jnp.asarray(image), bank, padding="SAME"))[0]
    return {name: out[..., i] for i, name in enumerate(FILTERS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="photo to filter (default: matplotlib's sample photo)")
    parser.add_argument("--out", default="handmade_filters.png", help="PNG to write")
    parser.add_argument("--quick", action="store_true", help="use a 64x64 image")
    args = parser.parse_args()
    responses = apply_all(load_grayscale(args.image, 64 if args.quick else None))
    fig, axes = plt.subplots(3, 3, figsize=(9, 9))
    for ax, (name, response) in zip(axes.ravel(), responses.items()):
        if name.startswith(("edge", "sobel")):
            # Signed responses: show magnitudes, scaled to the 99th percentile so a few
            # strong outlines do not leave the rest black.
            shown = np.abs(response)
            vmax = max(float(np.percentile(shown, 99)), 1e-6)
        else:
            shown, vmax = response, 1.0  # same intensity scale as the photo
        ax.imshow(shown, cmap="gray", vmin=0.0, vmax=vmax)
        ax.set_title(name)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}: " + ", ".join(
        f"{name} mean |response| {np.abs(r).mean():.3f}" for name, r in responses.items()))


if __name__ == "__main__":
    main()
