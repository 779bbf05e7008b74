"""Hostile model code: each snippet gets a typed error or a harmless image, and nothing escapes.

The corpus lives in tests/render/hostile/, one snippet per file (.py chart code,
.svg, .html/.md tables). The first lines of a file say which outcomes are fine
(`expect: forbidden|runtime`, `image` for a harmless picture). Placeholders
such as __CANARY_FILE__ or __PORT__ are filled in by this test with a canary
directory, a loopback TCP listener, named Unix sockets, a secret environment
variable, the test's own pid and the zygotes' pids, so an escape is *observed*
(a file appears or changes, a listener is contacted, a secret shows up in a
message, a process dies or lingers) rather than assumed.

All snippets run through ONE pool, concurrently, in a single storm.
"""
import hashlib
import os
import pathlib
import re
import secrets
import select
import signal
import site
import socket
import tempfile
import threading
import time

import matplotlib
import numpy as np
import psutil
import pytest

import render
from render.errors import ERROR_KINDS, MAX_MESSAGE_CHARS

HERE = pathlib.Path(__file__).parent
HOSTILE = HERE / "hostile"
REPO_ROOT = HERE.parent.parent
KIND_OF = {".py": "chart", ".svg": "svg", ".html": "table", ".md": "table"}
SNIPPETS = sorted(p for p in HOSTILE.iterdir() if p.suffix in KIND_OF)
LATE_ACTORS = ("thread_acts_later.py", "double_fork_daemon.py", "multiprocessing_daemon.py")
TIMEOUT_S = 3.0
SECRET_NAME = "VISUAL_ERM_TEST_SECRET"
LATE_WAIT_S = 4.0  # how long past a late actor's task we watch for its action

REFERENCES = [
    ("chart", """
import random
import numpy as np
import matplotlib.pyplot as plt
xs, ys = np.random.rand(40), np.random.rand(40)
plt.scatter(xs, ys, c=[random.random() for _ in xs], label="points")
plt.plot([0, 1], [0, 1], label="line")
plt.title("reference after the storm"); plt.legend(); plt.grid(True)
"""),
    ("table", "| model | score |\n|:--|--:|\n| **ours** | 0.91 |\n| baseline | *0.72* |"),
    ("svg", (HERE / "icons" / "bootstrap" / "yin-yang.svg").read_text()),
]


def expected_outcomes(path: pathlib.Path) -> set:
    head = "\n".join(path.read_text().splitlines()[:3])
    match = re.search(r"expect:\s*([a-z_|]+)", head)
    assert match, f"{path.name} does not say what to expect"
    outcomes = set(match.group(1).split("|"))
    assert outcomes <= set(ERROR_KINDS) | {"image"}, outcomes
    return outcomes


def outcome(result) -> str:
    return "image" if result.error is None else result.error.kind


def live_children(pid: int) -> list:
    try:
        return [c for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def live_descendants() -> dict:
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            pass
    return found


def zygotes_among(procs: dict) -> set:
    """The pool's zygotes: children of this process (their tasks share the command line)."""
    pids = set()
    for pid, proc in procs.items():
        try:
            if "render.zygote" in " ".join(proc.cmdline()) and proc.ppid() == os.getpid():
                pids.add(pid)
        except psutil.NoSuchProcess:
            pass
    return pids


class Listeners:
    """A loopback TCP listener and two named Unix sockets that record every contact."""

    def __init__(self, folder: pathlib.Path):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.stream_path, self.dgram_path = str(folder / "stream.sock"), str(folder / "dgram.sock")
        self.stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.stream.bind(self.stream_path)
        self.stream.listen()
        self.dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dgram.bind(self.dgram_path)
        self.contacts, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.is_set():
            for sock in select.select([self.tcp, self.stream, self.dgram], [], [], 0.1)[0]:
                if sock is self.dgram:
                    self.contacts.append(("unix-dgram", sock.recv(200)))
                    continue
                conn, _ = sock.accept()
                conn.settimeout(0.5)
                try:
                    data = conn.recv(200)
                except OSError:
                    data = b""
                self.contacts.append(("tcp" if sock is self.tcp else "unix-stream", data))
                conn.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        for sock in (self.tcp, self.stream, self.dgram):
            sock.close()


def snapshot(folder: pathlib.Path) -> dict:
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = pathlib.Path(root, name)
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            xattrs = sorted(os.listxattr(path, follow_symlinks=False)) if not path.is_symlink() else []
            state[str(path.relative_to(folder))] = (info.st_mode, info.st_uid, info.st_gid, info.st_size,
                                                    info.st_mtime_ns, digest, xattrs)
    return state


def planted_files(token: str) -> list:
    """Any file anywhere we can think of whose name carries this run's token."""
    folders = ["/tmp", "/var/tmp", "/dev/shm", str(REPO_ROOT), os.getcwd(), os.path.expanduser("~"),
               os.path.join(matplotlib.get_data_path(), "stylelib"), *site.getsitepackages()]
    return [os.path.join(f, n) for f in folders if os.path.isdir(f) for n in os.listdir(f) if token in n]


def rows(total_chars: int) -> str:
    row = "| {} | " + "x" * 40 + " |\n"
    return "".join(row.format(i) for i in range(total_chars // len(row) + 1))


@pytest.fixture(scope="module")
def storm(tmp_path_factory):
    """Run the whole corpus through one pool; collect everything the tests check."""
    folder = tmp_path_factory.mktemp("hostile")
    canary_dir = folder / "canary"
    (canary_dir / "nested").mkdir(parents=True)
    canary_token, secret, token = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(6)
    canary_file = canary_dir / "canary.txt"
    canary_file.write_text(f"canary {canary_token}\n")
    (canary_dir / "nested" / "inner.txt").write_text("keep me\n")
    listeners = Listeners(folder)
    before_canary = snapshot(canary_dir)
    before_procs = live_descendants()
    host_before = host_shared_state()
    os.environ[SECRET_NAME] = secret  # the zygotes must never see it
    pool = render.RenderPool(workers=2, timeout_s=TIMEOUT_S)
    try:
        zygotes = zygotes_among(live_descendants()) - set(before_procs)
        context = {
            "__CANARY_DIR__": str(canary_dir), "__CANARY_FILE__": str(canary_file),
            "__TOKEN__": token, "__PORT__": str(listeners.port),
            "__UNIX_STREAM__": listeners.stream_path, "__UNIX_DGRAM__": listeners.dgram_path,
            "__SECRET_NAME__": SECRET_NAME, "__REPO_ROOT__": str(REPO_ROOT),
            "__HOST_PIDS__": ", ".join(str(p) for p in sorted(zygotes) + [1]),
            "__TEST_PID__": str(os.getpid()),
            "__ROWS_10MB__": rows(10_000_000), "__ROWS_500KB__": rows(500_000),
        }

        def fill(path):
            text = path.read_text()
            for key, value in context.items():
                text = text.replace(key, value)
            return text

        references_before = pool.map([k for k, _ in REFERENCES], [c for _, c in REFERENCES])
        order = sorted(SNIPPETS, key=lambda p: p.name not in LATE_ACTORS)  # late actors first
        futures = {p.name: pool.submit(KIND_OF[p.suffix], fill(p), timeout_s=TIMEOUT_S) for p in order}
        for name in LATE_ACTORS:
            futures[name].result()
        late_done = time.monotonic()  # their delayed actions would land within LATE_WAIT_S
        results = {name: future.result() for name, future in futures.items()}
        time.sleep(max(0.0, late_done + LATE_WAIT_S - time.monotonic()))
        references_after = [pool.submit(kind, code).result() for kind, code in REFERENCES * 2]
        # The last tasks were killed as their replies went out; let them finish dying.
        zygotes_now = zygotes_among(live_descendants())
        _wait_for(lambda: all(len(live_children(z)) <= 1 for z in zygotes_now), 10.0)
        during_procs = live_descendants()
        during_parents = {pid: proc.ppid() for pid, proc in during_procs.items()}
    finally:
        os.environ.pop(SECRET_NAME, None)
        pool.close()
        listeners.close()
    return {
        "host_before": host_before, "host_after": host_shared_state(),
        "zygote_dirs": [n for n in os.listdir(tempfile.gettempdir())
                        if any(n.startswith(f"visual-erm-render-{z}-") for z in zygotes)],
        "results": results, "references_before": references_before, "references_after": references_after,
        "canary_before": before_canary, "canary_after": snapshot(canary_dir), "contacts": listeners.contacts,
        "planted": planted_files(token), "zygotes": zygotes, "before_procs": set(before_procs),
        "during_procs": during_procs, "during_parents": during_parents, "after_procs": set(live_descendants()),
        "leaks": {"secret": secret, "canary": canary_token, "passwd": _first_line("/etc/passwd")},
    }


def host_shared_state() -> dict:
    """What tasks could share through the host: hostname, SysV IPC objects, POSIX mqueues."""
    def read(path):
        try:
            with open(path) as handle:
                return handle.read().splitlines()[1:]
        except OSError:
            return []

    mqueues = sorted(os.listdir("/dev/mqueue")) if os.path.isdir("/dev/mqueue") else []
    return {"hostname": socket.gethostname(), "shm": read("/proc/sysvipc/shm"), "sem": read("/proc/sysvipc/sem"),
            "msg": read("/proc/sysvipc/msg"), "mqueue": mqueues}


def _first_line(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.readline().strip()
    except OSError:
        return ""


def test_corpus_is_broad():
    names = {p.name for p in SNIPPETS}
    assert len(names) >= 25
    assert {".py", ".svg", ".html", ".md"} <= {p.suffix for p in SNIPPETS}
    assert set(LATE_ACTORS) <= names


@pytest.mark.parametrize("path", SNIPPETS, ids=lambda p: p.name)
def test_snippet_gets_typed_error_or_harmless_image(storm, path):
    result = storm["results"][path.name]
    assert outcome(result) in expected_outcomes(path), f"{path.name}: {result.error}"
    if result.error is None:
        assert result.image.mode == "RGB" and 0 < result.image.width * result.image.height <= 4096 * 4096
    else:
        assert result.image is None
        assert result.error.kind in ERROR_KINDS
        assert 0 < len(result.error.message) <= MAX_MESSAGE_CHARS


def test_errors_name_the_line_of_the_model_code(storm):
    syntax = storm["results"]["syntax_error.py"].error
    assert syntax.kind == "syntax" and "line 3" in syntax.message, syntax
    name = storm["results"]["name_error.py"].error
    assert name.kind == "runtime" and "NameError" in name.message, name
    assert "line 4" in name.message and "valeus" in name.message, name


def test_crashes_and_exits_are_reported_as_such(storm):
    results = storm["results"]
    assert "SIGSEGV" in results["ctypes_segfault.py"].error.message
    assert "3" in results["sys_exit_3.py"].error.message
    assert "status 0" in results["os_exit_0.py"].error.message
    for name in ("infinite_loop.py", "ignore_signals.py", "sleep_forever.py"):
        assert results[name].error.kind == "timeout", name
        assert results[name].seconds < TIMEOUT_S + 2.0, (name, results[name].seconds)


def test_no_secret_or_outside_file_content_in_any_message(storm):
    messages = [r.error.message for r in storm["results"].values() if r.error is not None]
    for needle in filter(None, storm["leaks"].values()):
        for message in messages:
            assert needle not in message


def test_listeners_were_never_contacted(storm):
    assert storm["contacts"] == []


def test_files_outside_the_sandbox_untouched(storm):
    assert storm["canary_after"] == storm["canary_before"]
    assert storm["planted"] == []


def test_pool_renders_the_same_pixels_after_the_storm(storm):
    before = storm["references_before"]
    after = storm["references_after"]
    for index, reference in enumerate(before):
        assert reference.error is None, reference.error
        for again in after[index::len(before)]:
            assert again.error is None, again.error
            assert np.array_equal(np.asarray(again.image), np.asarray(reference.image)), REFERENCES[index][0]


def test_zygotes_survived_and_no_task_lingers(storm):
    zygotes = storm["zygotes"]
    assert len(zygotes) == 2
    during = set(storm["during_procs"]) - storm["before_procs"]
    # Besides the zygotes, each keeps exactly one fresh task forked and waiting for the next
    # request; no hostile task, nor anything one spawned, is alive.
    waiting = during - zygotes
    assert sorted(storm["during_parents"][p] for p in waiting) == sorted(zygotes), storm["during_parents"]


def test_no_process_left_after_close(storm):
    assert storm["after_procs"] - storm["before_procs"] == set()


def test_no_ipc_object_hostname_or_directory_left(storm):
    assert storm["host_after"] == storm["host_before"]
    assert storm["zygote_dirs"] == []


def test_gui_backend_and_deep_trees_render_and_the_next_task_too(storm):
    results = storm["results"]
    for name in ("gui_backend_chart.py", "previous_request_in_memory.py", "holds_the_marker.py"):
        assert results[name].error is None, (name, results[name].error)


# --- pools of their own: lifecycle under external violence -------------------------------

DRAW = "import matplotlib.pyplot as plt\nplt.bar([0, 1], [2, 1])\n"


def test_with_block_leaves_no_child_processes():
    before = set(live_descendants())
    with render.RenderPool(workers=1, timeout_s=TIMEOUT_S) as pool:
        assert zygotes_among(live_descendants())
        slow = pool.submit("chart", "import time\ntime.sleep(0.5)\n" + DRAW)
        assert pool.submit("chart", DRAW).result().error is None
    assert slow.result().error is None
    assert set(live_descendants()) - before == set()


def _wait_for(predicate, timeout_s=15.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow  # ~30 s on 2 cores
def test_pool_recovers_from_externally_killed_zygote():
    before = set(live_descendants())
    pool = render.RenderPool(workers=1, timeout_s=20)
    try:
        reference = pool.submit("chart", DRAW).result()
        assert reference.error is None
        # 1. Kill the zygote while a task sleeps in it: the task must die with it.
        (zygote,) = zygotes_among(live_descendants()) - before
        sleeper = pool.submit("chart", "import time\ntime.sleep(600)\n")
        tasks = _wait_for(lambda: len(live_children(zygote)) == 2 and live_children(zygote))  # + the spare
        os.kill(zygote, signal.SIGKILL)
        failed = sleeper.result(timeout=30)
        assert failed.error is not None and failed.error.kind == "runtime", failed.error
        try:
            _wait_for(lambda: not any(t.is_running() and t.status() != psutil.STATUS_ZOMBIE for t in tasks), 5.0)
        finally:
            for task in tasks:
                if task.is_running():
                    task.kill()  # the assertion above has failed; leave nothing behind anyway
        again = pool.submit("chart", DRAW).result()
        assert again.error is None, again.error
        assert np.array_equal(np.asarray(again.image), np.asarray(reference.image))
        # 2. Kill the (new) zygote while idle: the next task fails or renders, later ones render.
        (zygote2,) = zygotes_among(live_descendants()) - before
        assert zygote2 != zygote
        os.kill(zygote2, signal.SIGKILL)
        _wait_for(lambda: not psutil.pid_exists(zygote2) or psutil.Process(zygote2).status() == psutil.STATUS_ZOMBIE)
        first = pool.submit("chart", DRAW).result()
        assert first.error is None or first.error.kind == "runtime", first.error
        for result in pool.map("chart", [DRAW, DRAW]):
            assert result.error is None, result.error
            assert np.array_equal(np.asarray(result.image), np.asarray(reference.image))
    finally:
        pool.close()
    assert set(live_descendants()) - before == set()
