"""Prefaulting: the learned pages are the ones a child wrote, and populating them spares its faults."""
import os
import resource

import numpy as np

import render
from render import prefault
from render.examples import EXAMPLES

PAGE = os.sysconf("SC_PAGE_SIZE")


def _covered(ranges, start: int, length: int) -> int:
    """Bytes of [start, start + length) inside the ranges."""
    return sum(max(0, min(a + n, start + length) - max(a, start)) for a, n in ranges)


def test_learn_finds_exactly_the_pages_the_child_wrote():
    shared = np.ones(2048 * PAGE // 8, np.float64)  # written here, so present and shared after the fork
    start, length = shared.ctypes.data, shared.nbytes
    untouched, written = (start, length // 2), (start + length // 2, length // 2)

    def write_second_half():
        shared[len(shared) // 2:] = 2.0

    ranges = prefault.learn(write_second_half)
    interior = PAGE  # the halves' edges may share a page with neighbours
    assert _covered(ranges, written[0] + interior, written[1] - 2 * interior) == written[1] - 2 * interior
    assert _covered(ranges, untouched[0] + interior, untouched[1] - 2 * interior) == 0


def test_populated_pages_take_no_fault_when_written():
    shared = np.ones(4096 * PAGE // 8, np.float64)
    ranges = prefault.learn(lambda: shared.fill(3.0))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        faults = []
        for populate in (False, True):  # the first pass writes already-private pages: fork again
            child = os.fork()
            if child == 0:
                if populate:
                    prefault.populate(ranges)
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                shared.fill(4.0)
                os.write(write_fd, f"{resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}\n".encode())
                os._exit(0)
            os.waitpid(child, 0)
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd) as pipe:
        plain, populated = (int(line) for line in pipe.read().split())
    assert plain >= 4000  # one copy-on-write fault per page
    assert populated < plain / 20


def test_prefaulted_tasks_render_the_same_bytes():
    kinds, codes = [k for k, _, _ in EXAMPLES] * 2, [c for _, _, c in EXAMPLES] * 2  # kinds change task to task
    with render.RenderPool(workers=1, prefault=True) as warm, render.RenderPool(workers=1, prefault=False) as cold:
        for a, b in zip(warm.map(kinds, codes), cold.map(kinds, codes)):
            assert a.error is None and b.error is None
            assert a.image.tobytes() == b.image.tobytes()
