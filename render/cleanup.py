"""Remove what tasks leave behind: iteratively (no recursion limit) and within a time budget.

A hostile task may leave a directory tree thousands of levels deep, a million empty files, or
entries it made unreadable. Removal walks with an explicit stack, never follows symlinks,
makes directories searchable as it goes, and stops when its budget is spent; the caller
keeps the path and tries again later, never on a request's clock.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
import time

BASE_PREFIX = "visual-erm-render-"  # a zygote's folder of task dirs: visual-erm-render-<pid>-<random>
_BASE_NAME = re.compile(re.escape(BASE_PREFIX) + r"(\d+)-\w+")


def remove_tree(path: str, budget_s: float) -> bool:
    """Delete `path` and everything beneath it; True when it is gone, False when the budget ran
    out or something could not be removed now (never raises: the caller tries again later)."""
    try:
        return _remove_tree(path, time.monotonic() + budget_s)
    except OSError:
        return False


def _open_dir(name: str, dir_fd: int | None) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, flags, dir_fd=dir_fd)


def _remove_tree(path: str, deadline: float) -> bool:
    """Flatten, then delete: every subdirectory found is renamed up into `path` itself, so depth
    never grows a stack, a path beyond PATH_MAX or a descriptor per level."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return True
    except FileNotFoundError:
        return True
    top = _open_dir(path, None)
    prefix = f".up-{time.monotonic_ns()}-"  # unlike the names a stopped earlier call left
    try:
        moved = 0
        while True:
            with os.scandir(top) as entries:
                folders = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)
                           or os.unlink(entry.name, dir_fd=top)]
            if not folders:
                break
            for name in folders:
                inner = _open_dir(name, top)
                try:
                    with os.scandir(inner) as entries:
                        for entry in entries:
                            if time.monotonic() > deadline:
                                return False
                            if entry.is_dir(follow_symlinks=False):
                                moved += 1
                                os.rename(entry.name, f"{prefix}{moved}", src_dir_fd=inner, dst_dir_fd=top)
                            else:
                                os.unlink(entry.name, dir_fd=inner)
                finally:
                    os.close(inner)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(path)
    return True


def stale_bases(folder: str | None = None) -> list[str]:
    """Zygote folders in the temp dir whose zygote is no longer alive."""
    folder = folder or tempfile.gettempdir()
    stale = []
    for name in os.listdir(folder):
        match = _BASE_NAME.fullmatch(name)
        if match is None:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            stale.append(os.path.join(folder, name))
        except PermissionError:
            pass  # alive, someone else's
    return stale
