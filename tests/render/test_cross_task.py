"""One task cannot touch the next, the host's memory, or the trainer's: the third round of attacks.

Each snippet in tests/render/cross_task/ is one attack, run as an attacker ran it against a
1-worker pool with `memory_mb=128, disk_mb=16`. After each, the test renders a probe chart in
the *next* task (the spare that waited beside the attacker) and checks its pixels, its nice
value and I/O priority against a probe rendered before any attack, and checks the host: the
test process's and the zygote's priority and I/O class, the mounts this process sees, whether
this process can still take an AIO context, and that no memory stayed taken (the zygote did not
grow, no process of the attacker lives on; while it lived, the attack's own first call failed).
The host's MemAvailable is not compared: five engineers share this machine. The first lines
of a snippet say which outcomes are fine (`expect:`) and, optionally, the requested size
(`size: WxH`). Placeholders: __XATTR_FILE__ (a host file outside the task's read paths with a
`user.planted` attribute). A tmpfs with a random name is mounted before the pool starts, so
its name shows up in what a task could list of the host's mounts.
"""
import ctypes
import json
import os
import pathlib
import platform
import re
import secrets
import shutil
import subprocess
import tempfile

import numpy as np
import psutil
import pytest

import render
from render import sandbox

HERE = pathlib.Path(__file__).parent
ATTACKS = sorted((HERE / "cross_task").glob("*.py"))
PROBE = """
import ctypes, json, os, platform
import matplotlib.pyplot as plt
libc = ctypes.CDLL(None, use_errno=True)
ioprio = libc.syscall({"x86_64": 252, "aarch64": 31}[platform.machine()], 1, 0)
plt.bar([0, 1, 2], [3, 1, 2], color="tab:orange")
plt.title(json.dumps({"nice": os.getpriority(os.PRIO_PROCESS, 0), "ioprio": ioprio}))
"""
IO_SETUP, IO_DESTROY = {"x86_64": (206, 207), "aarch64": (0, 1)}[platform.machine()]
ZYGOTE_GROWTH = 32 << 20  # the zygote runs no model code; its memory must not grow with attacks


def header(path: pathlib.Path, key: str) -> str | None:
    match = re.search(rf"{key}:\s*(\S+)", "\n".join(path.read_text().splitlines()[:3]))
    return match.group(1) if match else None


def can_take_aio_context() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    context = ctypes.c_ulong(0)
    if libc.syscall(IO_SETUP, 1, ctypes.byref(context)) != 0:
        return False
    libc.syscall(IO_DESTROY, context)
    return True


def mount_points() -> list:
    with open("/proc/self/mountinfo") as mounts:
        return sorted(line.split()[4] for line in mounts)


def worker_memory(zygote: int) -> tuple[int, int]:
    """(the zygote's resident bytes, how many of its children are alive: the waiting spare only)."""
    worker = psutil.Process(zygote)
    alive = [c for c in worker.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
    return worker.memory_info().rss, len(alive)


def host_state(zygote: int) -> dict:
    me, worker = psutil.Process(), psutil.Process(zygote)
    return {"nice": (me.nice(), worker.nice()), "ionice": (tuple(me.ionice()), tuple(worker.ionice())),
            "mounts": mount_points(), "aio": can_take_aio_context()}


@pytest.fixture(scope="module")
def planted():
    """A host file with a secret xattr, and a tmpfs whose random name only a mount listing shows."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="cross-task-"))  # world-searchable, outside every read path
    folder.chmod(0o755)
    secret = secrets.token_hex(12)
    xattr_file = folder / "planted.txt"
    xattr_file.write_text("open() of this file fails inside a task\n")
    xattr_file.chmod(0o644)
    try:
        os.setxattr(xattr_file, "user.planted", secret.encode())
    except OSError as exc:
        pytest.skip(f"this filesystem takes no user xattrs ({exc})")
    hidden = folder / f"hidden-{secrets.token_hex(8)}"
    hidden.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(hidden)],
                             capture_output=True).returncode == 0
    yield {"secret": secret, "xattr_file": str(xattr_file), "hidden": hidden.name if mounted else None}
    if mounted:
        subprocess.run(["umount", str(hidden)], check=True)
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def pool(planted):
    limits = render.Limits(memory_mb=128, disk_mb=16)
    with render.RenderPool(workers=1, timeout_s=10, limits=limits) as p:
        yield p


@pytest.fixture(scope="module")
def baseline(pool):
    result = pool.submit("chart", PROBE, trace=True).result()
    assert result.error is None, result.error
    return result


def title(result) -> dict:
    return json.loads(dict(result.trace["texts"])["title"])


def test_every_attack_row_has_a_snippet():
    names = {p.stem for p in ATTACKS}
    assert {"setpriority_pgrp", "ioprio_pgrp_idle", "listmount_statmount", "getxattr_host_file",
            "forged_frame_huge", "vmsplice_pin", "page_table_bloat", "io_setup_all_events"} <= names


@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p.stem)
def test_attack_then_the_next_task_and_the_host_are_untouched(pool, planted, baseline, path):
    zygote = pool._zygotes[0].process.pid
    before, (rss_before, _) = host_state(zygote), worker_memory(zygote)
    size = header(path, "size")
    code = path.read_text().replace("__XATTR_FILE__", planted["xattr_file"])
    result = pool.submit("chart", code, size=tuple(map(int, size.split("x"))) if size else None,
                         trace=True).result()
    outcome = "image" if result.error is None else result.error.kind
    assert outcome in header(path, "expect").split("|"), result.error
    seen = json.dumps([result.error and result.error.message, result.trace])
    assert planted["secret"] not in seen
    assert planted["hidden"] is None or planted["hidden"] not in seen
    if result.image is not None:
        assert result.image.width * result.image.height <= 4096 * 4096
    following = pool.submit("chart", PROBE, trace=True).result()
    assert following.error is None, following.error
    assert title(following) == title(baseline)  # its nice value and I/O priority
    assert np.array_equal(np.asarray(following.image), np.asarray(baseline.image))
    after = host_state(zygote)
    assert after == before
    assert after["aio"]
    rss_after, alive = worker_memory(zygote)
    assert rss_after < rss_before + ZYGOTE_GROWTH
    assert alive <= 2  # the spare (and the probe task, if it is still being reaped)


def test_forged_frames_never_reach_the_trainer(pool):
    forged = (HERE / "cross_task" / "forged_frame_same_bytes.py").read_text()
    result = pool.submit("chart", forged, size=(64, 64)).result()
    assert result.error.kind == "invalid_output" and "32x128" in result.error.message
    honest = pool.submit("chart", "import matplotlib.pyplot as plt\nplt.plot([0, 1])\n", size=(64, 48)).result()
    assert honest.error is None and honest.image.size == (64, 48)


def test_page_tables_count_against_the_task_where_a_memory_cgroup_is_given(pool):
    if not pool.report["memory_cgroup"]["active"]:
        pytest.skip("no per-task memory cgroup on this host (" + pool.report["memory_cgroup"]["detail"] + ")")
    bloat = (HERE / "cross_task" / "page_table_bloat.py").read_text()
    assert pool.submit("chart", bloat).result().error.kind == "memory"


def test_a_task_leads_its_own_session_under_its_own_uid(pool):
    facts = pool.report["no_privileges"]["task"]
    assert facts["session_leader"]
    code = "import os\nimport matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.title(str(os.getuid()))\n"
    uids = [dict(r.trace["texts"])["title"] for r in pool.map("chart", [code] * 3, trace=True)]
    assert len(set(uids)) == 3 and "0" not in uids


def test_sandbox_report_names_seccomp_kind_and_memory_cgroup(pool):
    report = pool.report
    assert "allowlist" in report["seccomp"]["detail"]
    assert set(report) >= set(sandbox.PROTECTIONS + sandbox.OPTIONAL_PROTECTIONS)
    if not report["memory_cgroup"]["active"]:
        assert "fallback" in report["memory_cgroup"]["detail"]


def test_without_a_memory_cgroup_a_task_turns_transparent_huge_pages_off(pool):
    code = ("import ctypes\nimport matplotlib.pyplot as plt\nplt.plot([0, 1])\n"
            "plt.title(str(ctypes.CDLL(None).prctl(42, 0, 0, 0, 0)))\n")  # PR_GET_THP_DISABLE
    result = pool.submit("chart", code, trace=True).result()
    assert result.error is None, result.error
    expected = "0" if pool.report["memory_cgroup"]["active"] else "1"
    assert dict(result.trace["texts"])["title"] == expected
