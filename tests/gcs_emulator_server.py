"""gcp-storage-emulator, in memory, answering object downloads with the `x-goog-generation` and
`x-goog-metageneration` headers real GCS sends (the emulator leaves them out; tensorstore, which
orbax writes checkpoints through, reads the generation of every object it fetches from them).

    python tests/gcs_emulator_server.py HOST PORT BUCKET
"""
import os
import sys
import threading
import time

from gcp_storage_emulator.handlers import objects

_download = objects.download


def download(request, response, storage, *args, **kwargs):
    _download(request, response, storage, *args, **kwargs)
    try:
        obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
    except Exception:  # not found: the emulator already answered 404
        return
    response["x-goog-generation"] = str(obj["generation"])
    response["x-goog-metageneration"] = str(obj.get("metageneration", "1"))


objects.download = download  # before the server module builds its routes from it

from gcp_storage_emulator.server import create_server  # noqa: E402


def _exit_with_parent(parent: int) -> None:
    """A test killed before its fixture stops the server leaves no server behind."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def main(host: str, port: str, bucket: str) -> None:
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    create_server(host, int(port), in_memory=True, default_bucket=bucket).run()


if __name__ == "__main__":
    main(*sys.argv[1:])
