"""A local GCS server for tests: `gcp-storage-emulator` on a free loopback port, in memory, with the
generation headers real GCS sends on downloads (tests/gcs_emulator_server.py).

`gcs_bucket` (a pytest fixture, module scope) starts it, points this process and its children at it
(`STORAGE_EMULATOR_HOST`, which `policy.paths` turns into gcsfs and tensorstore settings) with a
fresh cache folder, yields the bucket URL "gs://test-bucket", and stops the server afterwards.
"""
import os
import socket
import subprocess
import sys
import time

import pytest

BUCKET = "test-bucket"
_ENV = ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL", "GOOGLE_AUTH_TOKEN_FOR_TESTING", "VISUAL_ERM_CACHE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(port: int) -> subprocess.Popen:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gcs_emulator_server.py")
    server = subprocess.Popen([sys.executable, script, "127.0.0.1", str(port), BUCKET],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("gcp-storage-emulator exited at start") from None
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gcp-storage-emulator did not open its port in 30 s")


@pytest.fixture(scope="module")
def gcs_bucket(tmp_path_factory):
    from policy import paths

    port = _free_port()
    server = start_emulator(port)
    saved = {key: os.environ.get(key) for key in _ENV}
    url = f"http://127.0.0.1:{port}"
    os.environ.update(STORAGE_EMULATOR_HOST=url, TENSORSTORE_GCS_HTTP_URL=url, GOOGLE_AUTH_TOKEN_FOR_TESTING="test",
                      VISUAL_ERM_CACHE=str(tmp_path_factory.mktemp("remote_cache")))
    paths.configure()
    try:
        yield f"gs://{BUCKET}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def bucket_files(url: str) -> list[str]:
    """Every object under a gs:// URL, relative to it."""
    from policy import paths

    return paths.list_files(url)
