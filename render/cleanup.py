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
    """Delete `path` and everything beneath it; True when it is gone, False when the budget ran out."""
    deadline = time.monotonic() + budget_s
    stack = [path]
    while stack:
        if time.monotonic() > deadline:
            return False
        top = stack[-1]
        try:
            info = os.lstat(top)
        except FileNotFoundError:
            stack.pop()
            continue
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(top)
            stack.pop()
            continue
        if info.st_mode & 0o700 != 0o700:
            os.chmod(top, 0o700)
        try:
            with os.scandir(top) as entries:
                children = [entry.path for _, entry in zip(range(256), entries)]
        except FileNotFoundError:
            stack.pop()
            continue
        if children:
            stack.extend(children)
        else:
            os.rmdir(top)
            stack.pop()
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
