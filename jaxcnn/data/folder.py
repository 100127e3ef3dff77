"""A folder of images with one sub-folder per class (the Kaggle cats-vs-dogs layout).

    directory/cat/cat.0.jpg, directory/cat/cat.1.jpg, ..., directory/dog/dog.0.jpg, ...

Contract: `from_folder(directory)` returns an in-memory `ArrayDataset` (uint8 images)
whose classes are the sub-folder names in sorted order (label i = i-th name, kept in
`class_names`) and whose examples are in sorted path order. Images are decoded with PIL, converted to RGB
or grayscale and resized bilinearly (antialiased) to `image_size`. Files PIL cannot read,
and decompression bombs (images claiming more pixels than PIL's limit), are skipped and
named with the reason in one warning, never given a label. Symbolic links that lead out
of the folder are not followed unless `follow_symlinks=True`. Without `image_size` every
image must have the same size. The decoded uint8 arrays are cached in an .npz file under
the cache directory (any filesystem) (`cache_dir`, else `$JAXCNN_CACHE/folders`, else
`~/.cache/jaxcnn/folders`), never inside the data; its name is a hash of the folder's
absolute path, its file list (paths, sizes, modification times) and the decoding
arguments, so a changed folder is decoded again. A held-out set is taken with
`jaxcnn.data.split(dataset, fraction, seed)` (stratified, deterministic).
"""
from __future__ import annotations

import hashlib
import io
import pathlib
import warnings

import numpy as np
from etils import epath
from PIL import Image, UnidentifiedImageError

from jaxcnn.data.arrays import from_arrays
from jaxcnn.download import cache_root
from jaxcnn.paths import as_path, is_remote, list_files, read_bytes, write_atomically

CACHE_FORMAT = 1  # bump when the decoding below changes, so old caches are not reused
IN_MEMORY_MAX_BYTES = 2 << 30  # datasets whose images take more in memory are read per batch


def default_cache_dir() -> pathlib.Path:
    """Where jaxcnn keeps decoded folders: `folders/` under `jaxcnn.download.cache_root()`."""
    return cache_root() / "folders"


def from_folder(directory: str | pathlib.Path, *, image_size: int | tuple[int, int] | None = None,
                channels: int = 3, cache: bool = True,
                cache_dir: str | pathlib.Path | None = None,
                follow_symlinks: bool = False, max_bytes: int = IN_MEMORY_MAX_BYTES,
                workers: int | None = None):
    """Loads a folder of class sub-folders of images into memory.

    Args:
      directory: the folder holding one sub-folder of images per class.
      image_size: resize every image to this (H, W) (or HxH for an int); None requires
        all images to have the same size.
      channels: 3 for RGB, 1 for grayscale.
      cache: read and write the decoded arrays in an .npz cache.
      cache_dir: where the cache lives, on any filesystem (e.g. a bucket every host of a
        pod reads); default `default_cache_dir()`.
      follow_symlinks: also read files whose symbolic links lead out of `directory`.
      max_bytes: the memory the decoded (8-bit) images may take; a larger folder (with
        `image_size` given) is streamed instead: a `FolderStream` with the same images
        (whole, resized), read by `workers` processes (see `data.stream_folder`).
      workers: decoding processes of a streamed folder.

    Returns:
      An `ArrayDataset` named after the folder, with `class_names`, or a `FolderStream`
      when the folder does not fit `max_bytes`.

    Raises:
      ValueError: a missing folder, no class sub-folders, no readable image, images of
        mixed sizes without `image_size`, bad `channels`.
    """
    root = checked_folder(directory, channels)
    size = None
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    class_names, files = scan_folder(root, follow_symlinks)
    if size is not None and len(files) * size[0] * size[1] * channels > max_bytes:
        from jaxcnn.data.stream import stream_folder  # imported here: stream imports this module

        warnings.warn(f"{root}: {len(files)} images of {size[0]}x{size[1]}x{channels} would "
                      f"take {len(files) * size[0] * size[1] * channels / 2**30:.1f} GiB as "
                      f"uint8, over max_bytes; they are read while training instead "
                      f"(a FolderStream, decoded in worker processes).", stacklevel=2)
        return stream_folder(root, size, training=False, channels=channels, workers=workers,
                             follow_symlinks=follow_symlinks, crop_fraction=None)
    cache_file = _cache_path(root, files, size, channels, cache_dir)
    if cache and cache_file.exists():
        with np.load(io.BytesIO(cache_file.read_bytes())) as npz:
            images, labels, skipped = npz["images"], npz["labels"], list(npz["skipped"])
    else:
        images, labels, skipped = _decode_all(root, files, size, channels)
        if cache:
            buffer = io.BytesIO()
            np.savez(buffer, images=images, labels=labels, skipped=np.array(skipped, str))
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(cache_file, buffer.getvalue())
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image file(s) in {root}: "
                      f"{'; '.join(skipped)}", stacklevel=2)
    return from_arrays(images, labels, num_classes=len(class_names), name=root.name,
                       class_names=class_names)


def checked_folder(directory: str | pathlib.Path, channels: int) -> pathlib.Path | epath.Path:
    """The folder of class sub-folders as a path (an `epath.Path` for a remote one such as
    "gs://bucket/pets"), refused when missing or with bad `channels` (1 or 3)."""
    root = as_path(directory) if is_remote(directory) else pathlib.Path(directory)
    if not root.is_dir():
        raise ValueError(f"directory {str(root)!r} is not a folder; pass the folder that holds "
                         "one sub-folder of images per class.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")
    return root


def scan_folder(root: pathlib.Path | epath.Path, follow_symlinks: bool = False
                ) -> tuple[list[str], list[tuple[pathlib.Path | epath.Path, int]]]:
    """The class names (sorted sub-folders) and every (file, label), in sorted path order.

    Symbolic links leading out of `root` are left out (with a warning naming them) unless
    `follow_symlinks`. A remote folder is listed in one request (`paths.list_files`).

    Raises:
      ValueError: no class sub-folders, or a class without files.
    """
    if is_remote(root):
        class_names, files = _scan_remote(root)
    else:
        class_names = sorted(p.name for p in root.iterdir()
                             if p.is_dir() and not p.name.startswith("."))
        files = [(path, label) for label, name in enumerate(class_names)
                 for path in sorted((root / name).rglob("*"))
                 if path.is_file() and not path.name.startswith(".")]
        files = _inside(root, files, follow_symlinks)
    if not class_names:
        raise ValueError(f"directory {str(root)!r} has no class sub-folders; put the images of "
                         "each class in their own sub-folder, e.g. cats/ and dogs/.")
    empty = sorted(set(class_names) - {class_names[label] for _, label in files})
    if empty:
        raise ValueError(f"class folder(s) {', '.join(map(repr, empty))} of {str(root)!r} hold "
                         "no files; remove them or add their images.")
    return class_names, files


def _scan_remote(root: epath.Path) -> tuple[list[str], list[tuple[epath.Path, int]]]:
    """`scan_folder` of a remote folder: its files' first path component is the class (an
    object store has no empty folders, so every class listed holds files)."""
    names = sorted((rel.split("/") for rel in list_files(root)
                    if "/" in rel and not any(part.startswith(".") for part in rel.split("/"))))
    class_names = sorted({parts[0] for parts in names})
    labels = {name: label for label, name in enumerate(class_names)}
    return class_names, [(root.joinpath(*parts), labels[parts[0]]) for parts in names]


def _inside(root: pathlib.Path, files: list, follow_symlinks: bool) -> list:
    """`files` less those whose symbolic links lead out of `root` (with a warning), unless
    `follow_symlinks`."""
    inside = root.resolve()
    outside = [path for path, _ in files if not path.resolve().is_relative_to(inside)]
    if outside and not follow_symlinks:
        files = [(path, label) for path, label in files if path.resolve().is_relative_to(inside)]
        warnings.warn(f"did not follow {len(outside)} symbolic link(s) leading out of {root}: "
                      f"{', '.join(str(p.relative_to(root)) for p in outside[:10])}; pass "
                      "follow_symlinks=True to read them.", stacklevel=4)
    return files


def _decode_all(root, files, size, channels) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decodes every file; returns (uint8 images, labels, relative paths of skipped files)."""
    images, labels, skipped, first = [], [], [], None
    for path, label in files:
        try:
            with Image.open(io.BytesIO(read_bytes(str(path)))) as image:
                image = image.convert("L" if channels == 1 else "RGB")
        except Image.DecompressionBombError as err:
            skipped.append(f"{path.relative_to(root)} (decompression bomb: {err})")
            continue
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            skipped.append(f"{path.relative_to(root)} ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'unreadable'})")
            continue
        if size is not None:
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        elif first is None:
            first = (path, image.size)
        elif image.size != first[1]:
            (w, h), (w0, h0) = image.size, first[1]
            raise ValueError(
                f"images of mixed sizes: {path} is {h}x{w} but {first[0]} is {h0}x{w0} (HxW); "
                "pass image_size=(height, width) to resize them all.")
        images.append(np.asarray(image, np.uint8).reshape(image.size[1], image.size[0], channels))
        labels.append(label)
    if not images:
        raise ValueError(f"no readable image in {root} ({len(files)} files, {len(skipped)} "
                         "unreadable); put PNG/JPEG/... files in one sub-folder per class.")
    return np.stack(images), np.array(labels, np.int32), skipped


def _cache_path(root, files, size, channels, cache_dir) -> epath.Path:
    """The cache file for this folder content and these decoding arguments."""
    where = str(root) if is_remote(root) else str(root.resolve())
    digest = hashlib.sha256(repr((CACHE_FORMAT, where, size, channels)).encode())
    for rel, label, version in _file_versions(root, files):
        digest.update(f"{rel}|{label}|{version}\n".encode())
    folder = as_path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"{root.name}-{digest.hexdigest()[:20]}.npz"


def _file_versions(root, files) -> list[tuple[str, int, str]]:
    """(relative path, label, size and version) of every file: a changed file changes its
    size, its modification time or, on an object store, its generation or ETag."""
    if not is_remote(root):
        stats = [(path, label, path.stat()) for path, label in files]
        return [(str(path.relative_to(root)), label, f"{stat.st_size}|{stat.st_mtime_ns}")
                for path, label, stat in stats]
    listing = list_files(root)
    out = []
    for path, label in files:
        rel = str(path.relative_to(root))
        info = listing[rel]
        version = next((str(info[k]) for k in ("generation", "ETag", "etag", "mtime", "updated")
                        if info.get(k) is not None), "")
        out.append((rel, label, f"{info.get('size')}|{version}"))
    return out
