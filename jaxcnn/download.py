"""Downloads of the files jaxcnn needs (pretrained weights), checked and cached.

Contract: `fetch(url, known_hash)` returns the local path of the file at `url`, downloading
it once into the cache (`cache_root()/weights`) with one tqdm progress bar. pooch does the
work: the file is written to a temporary name and renamed only once complete and its hash
verified ("sha256:<hex>", or "md5:<hex>" where only that is published), so a killed or
truncated download never leaves a file that passes for complete, and two processes
fetching the same file do not corrupt it. A file whose hash does not match is deleted and
refused, naming the URL and both hashes. `JAXCNN_WEIGHTS_MIRROR=<base URL>` fetches every
file as `<base URL>/<file name>` instead (institutional mirrors, air-gapped clusters).
Without a network, `fetch` fails within `TIMEOUT_S` naming the URL and where to put the
file by hand.
"""
from __future__ import annotations

import os
import pathlib
import posixpath
import urllib.parse

import pooch
import requests

MIRROR_VARIABLE = "JAXCNN_WEIGHTS_MIRROR"
CACHE_VARIABLE = "JAXCNN_CACHE"
TIMEOUT_S = 10.0  # connect and read timeout of one request


def cache_root() -> pathlib.Path:
    """jaxcnn's cache: `$JAXCNN_CACHE`, else `~/.cache/jaxcnn`."""
    return pathlib.Path(os.environ.get(CACHE_VARIABLE) or pathlib.Path.home() / ".cache" / "jaxcnn")


def file_name(url: str) -> str:
    """The file name at the end of `url`'s path."""
    return posixpath.basename(urllib.parse.urlparse(url).path)


def source_url(url: str, name: str | None = None) -> str:
    """`url`, or `<$JAXCNN_WEIGHTS_MIRROR>/<name>` when that is set (`name` defaults to the
    URL's file name)."""
    mirror = os.environ.get(MIRROR_VARIABLE)
    if not mirror:
        return url
    return f"{mirror.rstrip('/')}/{name or file_name(url)}"


def fetch(url: str, known_hash: str, *, name: str | None = None, subdir: str = "weights",
          progress: bool = True) -> pathlib.Path:
    """The cached, verified local copy of the file at `url`.

    Args:
      url: where the file is published.
      known_hash: "sha256:<hex>" (or "md5:<hex>" where nothing better is published).
      name: the file's name in the cache and on a mirror; defaults to the URL's file name
        (give one where that is not unique, e.g. the Hub's "model.safetensors").
      subdir: folder under `cache_root()`.
      progress: show a progress bar while downloading.

    Returns:
      The path of the file in the cache.

    Raises:
      ValueError: the download failed (no network, an HTTP error, an interrupted
        transfer) or its hash does not match; the message names the URL.
    """
    name = name or file_name(url)
    url = source_url(url, name)
    folder = cache_root() / subdir
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT_S)
    try:
        return pathlib.Path(pooch.retrieve(url, known_hash, fname=name, path=folder,
                                           downloader=downloader))
    except ValueError as err:  # pooch: the hash does not match; it deleted the download
        raise ValueError(f"{url}: the downloaded file is not the published one and was "
                         f"deleted ({err}).") from err
    except (requests.RequestException, OSError) as err:
        raise ValueError(f"cannot download {url} ({type(err).__name__}: {err}); download it "
                         f"by hand to {folder / name}, or set {MIRROR_VARIABLE} to a server "
                         "that has it.") from err
