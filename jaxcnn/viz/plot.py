"""Plots of what `jaxcnn.viz` computes: image grids, feature maps, overlays, ascent GIFs.

Contract: every function builds a `matplotlib.figure.Figure` without pyplot (no global
figure state, works under the Agg backend and in scripts), saves it as PNG when `path` is
given, and returns it, so a notebook shows it inline. Images are (N, H, W, C) with C = 1
(drawn in grey), 3 (RGB) or another count (the first channel), or (N, H, W).
"""
from __future__ import annotations

import io
import math
import pathlib
import tempfile
from typing import Mapping, Sequence

import numpy as np
from matplotlib import animation
from matplotlib.figure import Figure

from jaxcnn.data.arrays import unit_float
from jaxcnn.paths import as_path, write_atomically

PathLike = str | pathlib.Path


def _displayable(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(H, W) or (H, W, 3) array and the colour map to draw it with."""
    image = np.asarray(unit_float(np.asarray(image)), np.float32)
    if image.ndim == 3 and image.shape[-1] == 3:
        return np.clip(image, 0.0, 1.0), None
    if image.ndim == 3:
        image = image[..., 0]
    return image, "gray"


def _save(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig: Figure, path: PathLike):
    """Writes `fig` to `path` (PNG, PDF, SVG... by its suffix) on any filesystem `etils.epath`
    knows (a local folder or "gs://bucket/run/viz/x.png"), making the folders it needs.

    Returns:
      The path written, as an `epath.Path`.
    """
    path = as_path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=fig.dpi, bbox_inches="tight")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, buffer.getvalue())
    return path


def _grid_axes(fig: Figure, count: int, ncols: int):
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    return axes


def image_grid(images, titles: Sequence[str] | None = None, *, ncols: int = 8,
               title: str | None = None, cmap: str | None = None, cell: float = 1.5,
               path: PathLike | None = None) -> Figure:
    """Draws images in a grid, each with an optional title.

    Args:
      images: (N, H, W, C) or (N, H, W) array.
      titles: one title per image.
      ncols: images per row.
      title: a title over the whole grid.
      cmap: colour map for single-channel images (default grey).
      cell: inches per image.
      path: save the figure as PNG here.

    Returns:
      The figure.
    """
    images = np.asarray(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images; give one per image.")
    cols = max(1, min(ncols, len(images)))
    fig = Figure(figsize=(cell * cols, cell * math.ceil(len(images) / cols) + 0.4 * bool(title)))
    for i, ax in enumerate(_grid_axes(fig, len(images), ncols)[:len(images)]):
        picture, default_cmap = _displayable(images[i])
        ax.imshow(picture, cmap=cmap or default_cmap, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def feature_map_grid(maps: Mapping[str, np.ndarray], channels: Mapping[str, Sequence[int]] | None = None,
                     *, count: int = 8, cmap: str = "viridis", path: PathLike | None = None) -> Figure:
    """One row per layer of feature maps of one image (seed 004's block1_conv1 ... figure).

    Args:
      maps: layer name -> (h, w, C) activations of one image.
      channels: layer name -> channels to show; default the first `count`.
      count: channels per row when `channels` is not given for a layer.
      cmap: colour map.
      path: save as PNG here.

    Returns:
      The figure.
    """
    rows = {name: list(channels[name]) if channels and name in channels
            else list(range(min(count, np.shape(m)[-1]))) for name, m in maps.items()}
    ncols = max(len(c) for c in rows.values())
    fig = Figure(figsize=(1.6 * ncols, 1.8 * len(rows)))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (name, chosen) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c < len(chosen):
                ax.imshow(np.asarray(maps[name])[..., chosen[c]], cmap=cmap, interpolation="nearest")
                ax.set_title(f"{name}[{chosen[c]}]" if c == 0 else f"[{chosen[c]}]", fontsize=8)
    return _save(fig, path)


def overlay(images, heatmaps, titles: Sequence[str] | None = None, *, alpha: float = 0.5,
            cmap: str = "jet", path: PathLike | None = None) -> Figure:
    """Each image beside itself with a heat map (saliency, Grad-CAM) drawn over it.

    Args:
      images: (N, H, W, C) images in [0, 1].
      heatmaps: (N, H, W) maps in [0, 1].
      titles: one title per image.
      alpha: opacity of the heat map.
      cmap: colour map of the heat map.
      path: save as PNG here.

    Returns:
      The figure (N rows, 2 columns).
    """
    images, heatmaps = np.asarray(images), np.asarray(heatmaps)
    if images.shape[:3] != heatmaps.shape:
        raise ValueError(f"heatmaps {heatmaps.shape} must match the images' (N, H, W) "
                         f"{images.shape[:3]}.")
    fig = Figure(figsize=(4.0, 2.0 * len(images)))
    axes = fig.subplots(len(images), 2, squeeze=False)
    for i, (left, right) in enumerate(axes):
        picture, gray = _displayable(images[i])
        for ax in (left, right):
            ax.imshow(picture, cmap=gray, interpolation="nearest")
            ax.set_axis_off()
        right.imshow(heatmaps[i], cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
        if titles is not None:
            left.set_title(titles[i], fontsize=8)
    return _save(fig, path)


def ascent_gif(snapshots, path: PathLike, titles: Sequence[str] | None = None, *,
               steps: Sequence[int] | None = None, ncols: int = 8, fps: int = 4) -> Figure:
    """Writes an animated GIF of an ascent: one frame per snapshot, a grid of images each.

    Args:
      snapshots: (S, N, H, W, C) images (e.g. `LayerVisualization.snapshots` moved to
        frames first: `snapshots.transpose(1, 0, 2, 3, 4)`).
      path: the .gif file to write (matplotlib's Pillow writer).
      titles: one title per image.
      steps: the step of each frame, shown over the grid.
      ncols: images per row.
      fps: frames per second.

    Returns:
      The figure, showing the last frame.
    """
    frames = np.asarray(snapshots)
    fig = image_grid(frames[-1], titles, ncols=ncols, title=" ")
    pictures = [ax.images[0] for ax in fig.axes if ax.images]

    def draw(f):
        for picture, image in zip(pictures, frames[f]):
            picture.set_data(_displayable(image)[0])
        fig.suptitle(f"step {steps[f]}" if steps is not None else f"frame {f + 1}/{len(frames)}")
        return pictures

    movie = animation.FuncAnimation(fig, draw, frames=len(frames), blit=False)
    path = as_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # matplotlib's writers take a local file name: write there, then copy (any filesystem).
    with tempfile.TemporaryDirectory() as scratch:
        local = pathlib.Path(scratch, "ascent.gif")
        movie.save(str(local), writer=animation.PillowWriter(fps=fps))
        write_atomically(path, local.read_bytes())
    return fig
