"""Prefaulting: the learned pages are the ones a child wrote, and populating them spares its faults.

The page-level checks fork, so they run in a fresh single-threaded interpreter (this test process
has JAX's threads from other tests).
"""
import json
import subprocess
import sys
import textwrap

import render
from render.examples import EXAMPLES

PAGE_CHECKS = textwrap.dedent("""
    import json, os, resource
    import numpy as np
    from render import prefault

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def covered(ranges, start, length):
        return sum(max(0, min(a + n, start + length) - max(a, start)) for a, n in ranges)

    # 1. learn: exactly the pages the child wrote (the halves' edge pages may be shared with neighbours).
    shared = np.ones(2048 * PAGE // 8)  # written here: present and shared after the fork
    half = shared.nbytes // 2
    ranges = prefault.learn(lambda: shared[len(shared) // 2:].fill(2.0))
    written = covered(ranges, shared.ctypes.data + half + PAGE, half - 2 * PAGE)
    untouched = covered(ranges, shared.ctypes.data + PAGE, half - 2 * PAGE)

    # 2. populate: a forked child that populated the learned pages takes no fault writing them.
    big = np.ones(4096 * PAGE // 8)
    ranges = prefault.learn(lambda: big.fill(3.0))
    faults = []
    for populate in (False, True):
        read_fd, write_fd = os.pipe()
        if os.fork() == 0:
            if populate:
                prefault.populate(ranges)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            big.fill(4.0)
            os.write(write_fd, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before).encode())
            os._exit(0)
        os.close(write_fd)
        faults.append(int(os.read(read_fd, 100)))
        os.wait()
    print(json.dumps({"written": written, "untouched": untouched, "half": half - 2 * PAGE, "faults": faults}))
""")


def test_learn_finds_the_written_pages_and_populate_spares_their_faults():
    out = subprocess.run([sys.executable, "-c", PAGE_CHECKS], capture_output=True, text=True, timeout=120,
                         cwd=render.__path__[0] + "/..")
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout)
    assert found["written"] == found["half"]  # every written page learned
    assert found["untouched"] == 0  # no page only read
    plain, populated = found["faults"]
    assert plain >= 4000  # one copy-on-write fault per page of the 16 MiB array
    assert populated < plain / 20


def test_prefaulted_tasks_render_the_same_bytes():
    kinds, codes = [k for k, _, _ in EXAMPLES] * 2, [c for _, _, c in EXAMPLES] * 2  # kinds change task to task
    with render.RenderPool(workers=1, prefault=True) as warm, render.RenderPool(workers=1, prefault=False) as cold:
        for a, b in zip(warm.map(kinds, codes), cold.map(kinds, codes)):
            assert a.error is None and b.error is None
            assert a.image.tobytes() == b.image.tobytes()
