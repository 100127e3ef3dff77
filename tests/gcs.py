"""A Cloud Storage emulator on 127.0.0.1 for the tests of remote paths (gs://): gcsfs,
TensorStore (Orbax) and worker processes started from the test reach it through the
environment variables set here."""
import contextlib
import logging
import os
import socket

from etils import epath


@contextlib.contextmanager
def emulated_bucket(name: str = "bucket"):
    """Runs an in-memory GCS emulator holding bucket `name`; yields "gs://<name>"."""
    from gcp_storage_emulator.server import create_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=name)
    server.start()
    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
    keys = ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL")
    saved = {k: os.environ.get(k) for k in keys}
    for key in keys:
        os.environ[key] = f"http://127.0.0.1:{port}"
    try:
        yield f"gs://{name}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def upload(local, remote: str) -> None:
    """Copies the local folder `local` (every file, at any depth) to the remote `remote`."""
    for path in sorted(local.rglob("*")):
        if path.is_file():
            (epath.Path(remote) / str(path.relative_to(local))).write_bytes(path.read_bytes())
