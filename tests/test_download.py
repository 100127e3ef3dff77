"""jaxcnn.download against a server on 127.0.0.1 (no other network is used)."""
import hashlib
import http.server
import socket
import threading
import time

import pytest

from jaxcnn import download

CONTENT = bytes(range(256)) * 400  # 100 kB
SHA256 = "sha256:" + hashlib.sha256(CONTENT).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves CONTENT as any *.h5; "/truncated.h5" promises more bytes than it sends."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Handler.requests.append(self.path)
        if not self.path.endswith(".h5"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(CONTENT) * (2 if "truncated" in self.path else 1)))
        self.end_headers()
        self.wfile.write(CONTENT)

    def log_message(self, *args):
        pass


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    """A loopback server set as JAXCNN_WEIGHTS_MIRROR, and a fresh cache."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("JAXCNN_WEIGHTS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/w")
    Handler.requests = []
    yield tmp_path / "cache" / "weights"
    server.shutdown()


def test_a_file_is_fetched_once_verified_and_cached(mirror):
    path = download.fetch("https://example.org/models/vgg16.h5", SHA256, progress=False)
    assert path == mirror / "vgg16.h5" and path.read_bytes() == CONTENT
    assert Handler.requests == ["/w/vgg16.h5"]  # the mirror, with the original file name
    assert download.fetch("https://example.org/models/vgg16.h5", SHA256, progress=False) == path
    assert len(Handler.requests) == 1  # the second call reads the cache
    md5 = "md5:" + hashlib.md5(CONTENT).hexdigest()
    assert download.fetch("https://example.org/other.h5", md5, progress=False).is_file()


def test_a_wrong_hash_deletes_the_file_and_names_url_and_hashes(mirror):
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ValueError, match=r"http://127\.0\.0\.1:\d+/w/vgg16\.h5: the downloaded "
                                         rf"file is not the published one.*{'0' * 64}.*"
                                         rf"{SHA256[7:]}"):
        download.fetch("https://example.org/vgg16.h5", wrong, progress=False)
    assert not list(mirror.glob("*vgg16*"))


def test_an_interrupted_download_leaves_no_file(mirror):
    with pytest.raises(ValueError, match=r"cannot download http://127\.0\.0\.1:\d+/w/"
                                         "truncated.h5"):
        download.fetch("https://example.org/truncated.h5", SHA256, progress=False)
    assert not mirror.exists() or not [p for p in mirror.iterdir() if "truncated" in p.name]


def test_no_network_fails_fast_naming_where_to_put_the_file(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("JAXCNN_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"cannot download http://127.0.0.1:{port}/vgg16.h5 .*"
                                         r"by hand to .*cache/weights/vgg16.h5, or set "
                                         "JAXCNN_WEIGHTS_MIRROR"):
        download.fetch("https://example.org/vgg16.h5", SHA256, progress=False)
    assert time.perf_counter() - start < 10


def test_the_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path))
    assert download.cache_root() == tmp_path
    monkeypatch.delenv("JAXCNN_CACHE")
    assert download.cache_root().parts[-2:] == (".cache", "jaxcnn")
    monkeypatch.delenv("JAXCNN_WEIGHTS_MIRROR", raising=False)
    assert download.source_url("https://a.b/c/d.h5?x=1") == "https://a.b/c/d.h5?x=1"
