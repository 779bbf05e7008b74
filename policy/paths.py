"""One way to name what a run reads and writes: local paths and URLs (gs://BUCKET/...) alike.

Everything goes through `etils.epath` (what orbax and TFDS use; gs:// through gcsfs), so a
workdir, a model checkpoint or a TFDS data_dir may be local or in a bucket and the same code
handles both. Local paths are made absolute; URLs are left as they are (never `os.path.abspath`).

Some readers need local files (tokenizers, safetensors memory maps, ArrayRecord shards): for
them `local_copy(url)` copies a remote folder once into the cache (`cache_root()`, env
`VISUAL_ERM_CACHE`, default ~/.cache/visual_erm_jax/remote) and returns the copy. Things a run
builds locally to publish (tiny models, generated data) are made in that same cache place and
uploaded by `publish`.

With `STORAGE_EMULATOR_HOST` set (a local GCS emulator), gcsfs talks to it anonymously and
tensorstore (orbax's array writer) is pointed at it too (`TENSORSTORE_GCS_HTTP_URL`).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import tqdm
from etils import epath

log = logging.getLogger(__name__)

COMPLETE = ".complete"  # written last into a cached copy: the copy is whole


def is_url(path: str | os.PathLike) -> bool:
    """gs://, s3://, ... (anything with a scheme); plain and relative paths are local."""
    return "://" in os.fspath(path)


def resolve(path: str | os.PathLike) -> str:
    """A canonical name: local paths absolute, URLs unchanged but for a trailing slash."""
    path = os.fspath(path)
    return path.rstrip("/") if is_url(path) else os.path.abspath(path)


def join(base: str | os.PathLike, *names: str) -> str:
    base = os.fspath(base)
    if is_url(base):
        return "/".join([base.rstrip("/"), *names])
    return os.path.join(base, *names)


def path(p: str | os.PathLike) -> epath.Path:
    return epath.Path(resolve(p))


def exists(p: str | os.PathLike) -> bool:
    return path(p).exists()


def isdir(p: str | os.PathLike) -> bool:
    return path(p).is_dir()


def listdir(p: str | os.PathLike) -> list[str]:
    """Names in a folder (none when it does not exist)."""
    folder = path(p)
    return sorted(child.name for child in folder.iterdir()) if folder.is_dir() else []


def makedirs(p: str | os.PathLike) -> None:
    path(p).mkdir(parents=True, exist_ok=True)


def read_text(p: str | os.PathLike) -> str:
    return path(p).read_text(encoding="utf-8")


def read_bytes(p: str | os.PathLike) -> bytes:
    return path(p).read_bytes()


def write_bytes(p: str | os.PathLike, data: bytes) -> str:
    """Write a whole file so readers see the old or the new content, never half (a GCS object
    upload is atomic; locally a sibling file is renamed over it)."""
    target = resolve(p)
    if is_url(target):
        epath.Path(target).write_bytes(data)
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".partial", "wb") as f:
        f.write(data)
    os.replace(target + ".partial", target)
    return target


def write_text(p: str | os.PathLike, text: str) -> str:
    return write_bytes(p, text.encode("utf-8"))


def cache_root() -> str:
    return os.path.abspath(os.environ.get("VISUAL_ERM_CACHE")
                           or os.path.join(os.path.expanduser("~"), ".cache", "visual_erm_jax", "remote"))


def cache_path(url: str) -> str:
    """Where the local copy of a remote folder lives: CACHE/SCHEME/BUCKET/PATH."""
    scheme, rest = resolve(url).split("://", 1)
    return os.path.join(cache_root(), scheme, *[part for part in rest.split("/") if part not in ("", ".", "..")])


def _files(root: epath.Path, prefix: str = "") -> Iterator[tuple[epath.Path, str]]:
    """(file, path relative to root) of every file below root."""
    for child in sorted(root.iterdir()):
        if child.is_dir():
            yield from _files(child, prefix + child.name + "/")
        else:
            yield child, prefix + child.name


def list_files(root: str | os.PathLike) -> list[str]:
    """Every file below a folder (local or URL), relative to it."""
    return [relative for _, relative in _files(path(root))] if isdir(root) else []


def copy_tree(source: str | os.PathLike, dest: str | os.PathLike, *, last: str | None = None,
              progress: str | None = None) -> None:
    """Copy every file of `source` to `dest` (either may be a URL); `last` (a file name at the top,
    e.g. config.json) is copied after the rest, so its presence means the copy is whole. `progress`
    names a progress bar (bytes) for copies a person waits on."""
    source_path, dest_path = path(source), path(dest)
    files = sorted(_files(source_path), key=lambda item: (item[1] == last, item[1]))
    bar = tqdm.tqdm(desc=progress, unit="B", unit_scale=True, disable=progress is None)
    for file, relative in files:
        target = dest_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        bar.update(target.write_bytes(file.read_bytes()) or 0)
    bar.close()


def local_copy(p: str | os.PathLike) -> str:
    """A local folder holding `p`: `p` itself when local, else its cached copy, made once per host (under a
    lock, so processes of one host share it; copied beside the cache and renamed into place, whole or not
    at all)."""
    if not is_url(p):
        return resolve(p)
    local = cache_path(os.fspath(p))
    if os.path.exists(os.path.join(local, COMPLETE)):
        return local
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(local, COMPLETE)):  # another process of this host made it meanwhile
            return local
        if not isdir(p):
            raise FileNotFoundError(f"{resolve(p)}: no such folder")
        staging = tempfile.mkdtemp(prefix=os.path.basename(local) + ".", dir=os.path.dirname(local))
        log.info("copying %s to the cache %s", resolve(p), local)
        copy_tree(p, staging, progress=f"copy {os.path.basename(local)}")
        open(os.path.join(staging, COMPLETE), "w").close()
        shutil.rmtree(local, ignore_errors=True)  # an incomplete copy of an earlier, killed run
        os.replace(staging, local)
    return local


@contextlib.contextmanager
def built_folder(out: str | os.PathLike, *, last: str) -> Iterator[str]:
    """A local folder to build `out` in. On success it becomes `out`: renamed into place when local,
    uploaded (`last` after the rest) and kept as `out`'s cached copy when `out` is a URL."""
    out = resolve(out)
    local = cache_path(out) if is_url(out) else out
    staging = local + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    yield staging
    if is_url(out):
        copy_tree(staging, out, last=last)
        open(os.path.join(staging, COMPLETE), "w").close()
    shutil.rmtree(local, ignore_errors=True)
    os.replace(staging, local)


def publish(local: str, url: str) -> None:
    """Upload a folder built in `cache_path(url)` (e.g. generated data), then a `COMPLETE` marker
    there and in the local copy: `is_published(url)` tells a later run the upload is whole."""
    copy_tree(local, url)
    write_bytes(join(url, COMPLETE), b"")
    open(os.path.join(local, COMPLETE), "w").close()


def is_published(url: str) -> bool:
    return exists(join(url, COMPLETE))


def configure() -> None:
    """gcsfs without listing caches (other hosts and tensorstore write the same bucket); with
    `STORAGE_EMULATOR_HOST` set, gcsfs and tensorstore both talk to that emulator."""
    import fsspec.config

    fsspec.config.conf.setdefault("gcs", {}).setdefault("use_listings_cache", False)
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return
    fsspec.config.conf.setdefault("gcs", {}).setdefault("token", "anon")  # an emulator wants no credentials
    os.environ.setdefault("TENSORSTORE_GCS_HTTP_URL", host if "://" in host else f"http://{host}")
    os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
    # gcsfs would ask the emulator for the bucket's type over gRPC + TLS it does not speak (60 s timeout)
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


configure()
