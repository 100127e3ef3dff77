"""Decoding and resizing one image file for the streaming pipeline (`data.stream`).

Why these libraries (measured on a 2-core Intel Xeon, 400x300 JPEGs, one thread, best of
5 passes): JPEG files are decoded by simplejpeg (libjpeg-turbo, 0.50 ms; OpenCV 0.52 ms,
TensorFlow's decode_jpeg 0.55 ms; the same pixels as OpenCV; its fastdct/fastupsample
options save 5-10% more for slightly different pixels and are not used) whose header read
takes 2 us (Pillow's 23 us), so the
pixel count is checked against Pillow's decompression-bomb limit before anything is
allocated. Other formats (PNG, BMP, TIFF, WebP) and JPEGs simplejpeg refuses (CMYK,
damaged) go to OpenCV, after Pillow has read the header (the same bomb check; Pillow names
what is wrong with a file OpenCV cannot read and decodes the formats OpenCV does not, such
as GIF). OpenCV's bilinear resize is SIMD code: a crop resized to 224x224 takes 0.07 ms
(Pillow's antialiased resize 0.40 ms). Together this lets two worker processes keep up
with tf.data. Images come out RGB (or grayscale) whatever their mode: grayscale, RGBA,
CMYK and palette images are converted.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

# Errors that mean "this file is not a readable image" (the file is skipped, not fatal).
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError,
              Image.DecompressionBombError)


def decode(data: bytes, channels: int) -> np.ndarray:
    """Decodes an image file's bytes into uint8 (H, W, channels), RGB or grayscale.

    Args:
      data: the file's content.
      channels: 3 (RGB) or 1 (grayscale).

    Returns:
      The pixels.

    Raises:
      One of UNREADABLE: not an image, truncated, or a decompression bomb.
    """
    if data[:3] == JPEG_MAGIC:
        pixels = _decode_jpeg(data, channels)
        if pixels is not None:
            return pixels
    with Image.open(io.BytesIO(data)) as probe:  # header only; raises for bombs
        width, height = probe.size
        # EXIF orientation is ignored, as Pillow, torchvision and tf.io.decode_jpeg do.
        flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR_RGB
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
        if pixels is None or pixels.shape[:2] != (height, width):
            probe.load()  # raises the reason for a damaged file; else a format OpenCV lacks
            pixels = np.asarray(probe.convert("L" if channels == 1 else "RGB"), np.uint8)
    return pixels.reshape(height, width, channels)


JPEG_MAGIC = b"\xff\xd8\xff"


def _decode_jpeg(data: bytes, channels: int) -> np.ndarray | None:
    """A JPEG decoded by simplejpeg, or None where it cannot (CMYK, a damaged file: the
    general path then decodes it or names the reason).

    Raises:
      Image.DecompressionBombError: more pixels than Pillow's limit allows.
    """
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    limit = Image.MAX_IMAGE_PIXELS  # Pillow's rule: over twice the limit is an error
    if limit and width * height > 2 * limit:
        raise Image.DecompressionBombError(
            f"Image size ({width * height} pixels) exceeds limit of {2 * limit} pixels, could "
            "be decompression bomb DOS attack.")
    try:
        pixels = simplejpeg.decode_jpeg(data, "GRAY" if channels == 1 else "RGB")
    except ValueError:
        return None
    return pixels.reshape(height, width, channels)


def crop_resize(pixels: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int],
                out: np.ndarray | None = None) -> np.ndarray:
    """The region `box` = (left, top, right, bottom) of `pixels`, resized to `size` (H, W).

    Bilinear; where the region shrinks by 2x or more, area averaging instead, so that
    large reductions do not alias.

    Args:
      pixels: (H, W, C) uint8 image.
      box: the region.
      size: (height, width) of the result.
      out: a C-contiguous (height, width, C) uint8 array to write into (a row of a batch:
        no allocation per image, which on a 2-core machine costs as much as the resize).

    Returns:
      The resized region (`out` when given).
    """
    left, top, right, bottom = box
    region = pixels[top:bottom, left:right]
    shrink = min((right - left) / size[1], (bottom - top) / size[0])
    method = cv2.INTER_AREA if shrink >= 2 else cv2.INTER_LINEAR
    if out is None:
        out = np.empty((size[0], size[1], pixels.shape[2]), np.uint8)
    cv2.resize(region, (size[1], size[0]), dst=_plane(out), interpolation=method)
    return out


def flip_in_place(image: np.ndarray) -> None:
    """Mirrors a C-contiguous (H, W, C) uint8 image left to right, in place."""
    cv2.flip(_plane(image), 1, dst=_plane(image))


def _plane(image: np.ndarray) -> np.ndarray:
    """The (H, W) view OpenCV writes for a one-channel (H, W, 1) image (it has no channel
    axis for one channel); other images as they are."""
    return image.reshape(image.shape[:2]) if image.shape[2] == 1 else image


def single_threaded(worker_index: int, worker_count: int) -> None:
    """Grain worker set-up: one OpenCV thread per worker process (the workers share the
    cores already)."""
    del worker_index, worker_count
    cv2.setNumThreads(1)
