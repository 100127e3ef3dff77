"""Paths on any filesystem: the one owner of how jaxcnn names and reads files.

Contract: `as_path(path)` turns what a user gives (a string, a `pathlib.Path`, a
"gs://..." address) into an `etils.epath.Path`, the path type Orbax also uses, so every
place that takes a path (run directories, checkpoints, image folders) takes a remote one
too; a remote path whose fsspec package is missing is refused naming the package.
`list_files(root)` lists a remote folder with one recursive listing (object stores have no
folders; walking them one level at a time costs a request per folder), `read_bytes(path)`
reads one file, with plain `open` for local files (the streaming workers' hot path);
`write_atomically(path, content)` writes one whole or not at all.
"""
from __future__ import annotations

import importlib.util
import os

from etils import epath

# Filesystems etils.epath reaches through fsspec, and the package each one needs.
REMOTE_PACKAGES = {"gs://": "gcsfs", "s3://": "s3fs", "az://": "adlfs", "hf://": "huggingface_hub"}


def is_remote(path) -> bool:
    """Whether `path` names a remote filesystem (gs://, s3://, ...)."""
    return str(path).startswith(tuple(REMOTE_PACKAGES))


def as_path(path: str | os.PathLike) -> epath.Path:
    """`path` as an `epath.Path`; local paths made absolute (Orbax wants them so).

    Args:
      path: a local path or a remote address ("gs://bucket/dir").

    Returns:
      The path.

    Raises:
      ValueError: a remote path whose filesystem package is not installed.
    """
    text = os.fspath(path)
    for prefix, package in REMOTE_PACKAGES.items():
        if text.startswith(prefix) and importlib.util.find_spec(package) is None:
            raise ValueError(f"{text!r} is on {prefix} but its filesystem package is not "
                             f"installed: pip install {package}")
    return epath.Path(text if is_remote(text) else os.path.abspath(text))


def list_files(root: epath.Path) -> dict[str, dict]:
    """Every file under a remote folder, at any depth, with one recursive listing.

    Args:
      root: a remote folder.

    Returns:
      {path relative to `root` (with "/"): the filesystem's details (size, and a version
      such as a generation, an ETag or a modification time)}.
    """
    import fsspec  # a dependency of the remote filesystem packages REMOTE_PACKAGES names

    fs, base = fsspec.core.url_to_fs(str(root))
    base = base.rstrip("/")
    found = fs.find(base, detail=True)
    return {name[len(base) + 1:]: info for name, info in found.items()
            if info.get("type", "file") == "file" and name.startswith(base + "/")}


def write_atomically(path: epath.Path, content: bytes) -> None:
    """Writes `content` to a temporary file next to `path`, then renames it into place, so
    a crash never leaves half a file.

    On an object store one upload is already all or nothing (an object appears when it is
    complete), and a rename is a copy, so the object is written directly.
    """
    if is_remote(path):
        path.write_bytes(content)
        return
    temporary = path.parent / f".{path.name}.{os.getpid()}.tmp"
    temporary.write_bytes(content)
    temporary.replace(path)


def read_bytes(path: str) -> bytes:
    """The content of the file `path` (local or remote)."""
    if is_remote(path):
        return epath.Path(path).read_bytes()
    with open(path, "rb") as f:
        return f.read()
