"""A file server on 127.0.0.1 for the tests of downloads (no other network is used)."""
import contextlib
import functools
import http.server
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder's files; records the paths asked for instead of logging them."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        QuietHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_folder(folder):
    """Serves `folder` over HTTP on 127.0.0.1; yields the base URL."""
    QuietHandler.requests = []
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
