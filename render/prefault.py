"""Pre-copy, in a waiting task, the memory pages a render is going to write.

A task forked from the warm zygote shares all its pages copy-on-write; the first
write to each page a render touches costs a page fault and a copy (about 4,000
of them for a small chart, a fifth of its render time on a VM). The zygote
learns once, at start-up, which pages rendering its own example gallery dirties
(a probe child renders them and reads /proc/self/pagemap: a written page is
present and mapped by that child alone), and each waiting task copies those
pages with one MADV_POPULATE_WRITE per range before its request arrives. That
moves the copying off the request's critical path onto an idle core; where no
core is idle it costs about as much CPU as it saves, so the pool turns it on
only when it has fewer workers than the host has cores.
"""
from __future__ import annotations

import ctypes
import json
import os

import numpy as np

from render import sandbox

MADV_POPULATE_WRITE = 23  # Linux >= 5.14
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PRESENT, _EXCLUSIVE = np.uint64(1 << 63), np.uint64(1 << 56)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _writable_anonymous_regions() -> list[tuple[int, int]]:
    """(start, end) of the private writable heap and anonymous mappings (the Python heap lives there)."""
    regions = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            name = fields[5] if len(fields) > 5 else ""
            if fields[1].startswith("rw") and fields[1][3] == "p" and name in ("", "[heap]"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions.append((start, end))
    return regions


def dirty_ranges() -> list[tuple[int, int]]:
    """(address, length) runs of pages this process alone maps: those it wrote since its fork."""
    ranges = []
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        for start, end in _writable_anonymous_regions():
            entries = np.frombuffer(os.pread(fd, (end - start) // _PAGE * 8, start // _PAGE * 8), np.uint64)
            pages = np.flatnonzero((entries & _PRESENT).astype(bool) & (entries & _EXCLUSIVE).astype(bool))
            if not len(pages):
                continue
            breaks = np.flatnonzero(np.diff(pages) != 1)
            firsts = np.concatenate([pages[:1], pages[breaks + 1]])
            lasts = np.concatenate([pages[breaks], pages[-1:]])
            ranges += [(start + int(a) * _PAGE, int(b - a + 1) * _PAGE) for a, b in zip(firsts, lasts)]
    finally:
        os.close(fd)
    return ranges


def learn(action) -> list[tuple[int, int]]:
    """Run `action` in a forked child; the page ranges it dirtied (empty if that cannot be read).

    Must run in a single-threaded process (it forks).
    """
    def produce() -> bytes:
        try:
            action()
            return json.dumps(dirty_ranges()).encode()
        except BaseException:
            return b"[]"

    return [tuple(r) for r in json.loads(sandbox.answer_of_child(produce) or b"[]")]


def populate(ranges) -> None:
    """Copy these pages into this process now (ranges no longer mapped are skipped)."""
    for address, length in ranges:
        if _libc.madvise(address, length, MADV_POPULATE_WRITE) != 0 and ctypes.get_errno() == 22:
            return  # EINVAL: a kernel without MADV_POPULATE_WRITE
