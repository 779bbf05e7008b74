"""The warm worker: imports everything once, then forks a fresh jailed task per request.

Process tree for one task:
    zygote (network namespace without interfaces; never runs model code)
      -> task (PID 1 of a new PID namespace: unshare before the fork, setns
               back after it; enters the sandbox, waits for its request on a
               pipe, renders, writes one length-prefixed frame to a pipe, exits)
Killing the task kills every process it could have made. The zygote reads the
frame with a deadline and a size cap, so a hostile task can only ever produce
a (harmless) image or an error.

The zygote keeps the next task forked and jailed before its request arrives,
and cleans up the last one while the current one renders: fork, jail and reap
overlap the rendering instead of adding to every request's latency.
"""
from __future__ import annotations

import ctypes
import fcntl
import gc
import json
import os
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
from multiprocessing.connection import Connection

from render import prefault, sandbox
from render.request import KINDS
from render.trace_schema import MAX_TRACE_BYTES, shrink_trace, validate_trace

HEADER = struct.Struct(">II")  # header length, payload length
MAX_HEADER = 4096 + MAX_TRACE_BYTES  # room for an optional chart trace
MAX_PAYLOAD = 4096 * 4096 * 3
PR_SET_PDEATHSIG = 1
RESULT_PIPE_BYTES = 1 << 21


def _write_all(fd: int, data: bytes) -> None:
    data = memoryview(data)
    while data:
        data = data[os.write(fd, data):]


def _write_frame(fd: int, header: dict, payload: bytes = b"") -> None:
    head = json.dumps(header).encode()[:MAX_HEADER]
    _write_all(fd, HEADER.pack(len(head), len(payload)) + head + payload)


_SECCOMP = None  # the task filter, built once in the zygote
_READABLE: list[str] = []  # the task's Landlock read list, computed once in the zygote


def _read_request(fd: int) -> dict | None:
    """The request the zygote writes to a waiting task; None when the zygote retires it."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return json.loads(b"".join(chunks)) if chunks else None


def _task_main(request_fd: int, result_fd: int, limits: sandbox.Limits, active: frozenset, workdir: str) -> None:
    """Runs in the task process: jail itself, wait for the request, render it; never returns."""
    from render.dispatch import render_array, render_traced
    from render.pycode import classify

    request = None
    try:
        sandbox.enter(workdir, (request_fd, result_fd), limits, active, readable=_READABLE, seccomp=_SECCOMP)
        request = _read_request(request_fd)
        if request is None:
            os._exit(0)
        if request.get("trace"):
            rgb, trace = render_traced(request["kind"], request["code"], request["size"])
        else:
            rgb, trace = render_array(request["kind"], request["code"], request["size"]), None
        header, payload = {"ok": True, "height": rgb.shape[0], "width": rgb.shape[1]}, rgb.tobytes()
        if trace is not None:
            header["trace"] = shrink_trace(trace)
    except BaseException as exc:  # noqa: BLE001 - every failure is data
        error = classify(exc, request["code"] if request else "").error
        header, payload = {"ok": False, "kind": error.kind, "message": error.message}, b""
    try:
        _write_frame(result_fd, header, payload)
    finally:
        os._exit(0)


def _read_exact(fd: int, count: int, deadline: float) -> bytes | None:
    chunks, remaining = [], count
    while remaining:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            return None
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float) -> tuple[dict | None, bytes, bool]:
    """(header, payload, timed_out); header None when the task sent no valid frame."""
    sizes = _read_exact(fd, HEADER.size, deadline)
    if sizes is None:
        return None, b"", time.monotonic() >= deadline
    head_len, payload_len = HEADER.unpack(sizes)
    if head_len > MAX_HEADER or payload_len > MAX_PAYLOAD:
        return None, b"", False
    head = _read_exact(fd, head_len, deadline)
    payload = _read_exact(fd, payload_len, deadline) if payload_len else b""
    if head is None or payload is None:
        return None, b"", time.monotonic() >= deadline
    try:
        header = json.loads(head)
    except ValueError:
        return None, b"", False
    return (header if isinstance(header, dict) else None), payload, False


def _validate(header: dict, payload: bytes, seconds: float) -> tuple:
    """Turn an untrusted frame into a reply; anything off becomes an error."""
    if header.get("ok") is True:
        height, width = header.get("height"), header.get("width")
        trace = header.get("trace")
        if trace is not None and validate_trace(trace) is None:
            return ("error", "runtime", "the render task returned a malformed trace", seconds)
        if isinstance(height, int) and isinstance(width, int) and 0 < height * width * 3 == len(payload):
            return ("image", width, height, payload, seconds, trace)
        return ("error", "runtime", "the render task returned a malformed image", seconds)
    kind, message = header.get("kind"), header.get("message")
    from render.errors import ERROR_KINDS

    if kind in ERROR_KINDS and isinstance(message, str):
        return ("error", kind, message, seconds)
    return ("error", "runtime", "the render task returned a malformed error", seconds)


def _exit_reason(status: int) -> tuple[str, str]:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signum = -code
        if signum == signal.SIGXCPU:
            return "timeout", "exceeded its CPU-time limit"
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        return "runtime", f"the process crashed ({name})"
    return "runtime", f"the process exited with status {code} before producing an image"


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone


class TaskProcess:
    """One jailed task, forked (PID 1 of a fresh PID namespace) *before* its request arrives.

    The zygote keeps one waiting, so the fork and the jail are off the request's critical path;
    it is still a fresh copy of the zygote, which never runs model code: no task sees another's
    state. `start` hands over the request, `collect` reads the answer, `close` kills and reaps.
    """

    def __init__(self, limits: sandbox.Limits, active: frozenset, base: str, own_pid_ns: int | None,
                 prefault_ranges=()):
        self.workdir = tempfile.mkdtemp(dir=base)
        request_r, self._request_w = os.pipe()
        self._result_r, result_w = os.pipe()
        try:
            fcntl.fcntl(result_w, fcntl.F_SETPIPE_SZ, RESULT_PIPE_BYTES)  # a chart in one write
        except OSError:
            pass
        if own_pid_ns is not None:
            sandbox.unshare(sandbox.CLONE_NEWPID)  # the next child is PID 1 of a new namespace
        pid = os.fork()
        if pid == 0:
            os.close(self._request_w)
            os.close(self._result_r)
            # Die with the zygote (seccomp keeps the task from undoing this); if the
            # zygote is already gone, nobody reads result_r: the pipe reports POLLERR.
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            orphan_check = select.poll()
            orphan_check.register(result_w, 0)
            if orphan_check.poll(0):
                os._exit(1)
            prefault.populate(prefault_ranges)
            _task_main(request_r, result_w, limits, active, self.workdir)
        if own_pid_ns is not None:
            sandbox.setns(own_pid_ns, sandbox.CLONE_NEWPID)  # so the next unshare may start another
        os.close(request_r)
        os.close(result_w)
        self.pid, self._pidfd, self._reaped = pid, os.pidfd_open(pid), False
        self._request, self._start, self._status = None, 0.0, 0

    def start(self, request: dict) -> None:
        """Set the CPU limit and hand the request over; the task starts rendering."""
        self._request, self._start = request, time.monotonic()
        try:
            sandbox.limit_cpu(self.pid, request["timeout_s"])
            _write_all(self._request_w, json.dumps(request).encode())
        except (ProcessLookupError, BrokenPipeError):
            pass  # the task is gone; `collect` reports how it ended
        finally:
            os.close(self._request_w)

    def collect(self) -> tuple:
        """Wait (until the request's deadline) for the frame; a reply that is always data."""
        deadline = self._start + self._request["timeout_s"]
        header, payload, timed_out = _read_frame(self._result_r, deadline)
        if header is None:
            # Without a valid frame, give a dying task a moment, then kill it and ask why it ended.
            if not timed_out:
                select.select([self._pidfd], [], [], 1.0)
            self._reap()
        else:
            _kill(self._pidfd)  # as PID 1 its death takes every process it made with it
        seconds = time.monotonic() - self._start
        if header is not None:
            return _validate(header, payload, seconds)
        if timed_out:
            return ("error", "timeout", f"exceeded the time limit of {self._request['timeout_s']:g} s", seconds)
        return ("error", *_exit_reason(self._status), seconds)

    def _reap(self) -> None:
        if not self._reaped:
            _kill(self._pidfd)
            _, self._status = os.waitpid(self.pid, 0)
            self._reaped = True

    def close(self) -> None:
        """Kill, reap and remove the task's directory (the zygote does this off the critical path)."""
        if self._request is None:
            os.close(self._request_w)
        self._reap()
        os.close(self._result_r)
        os.close(self._pidfd)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _render_examples(kind: str | None = None, limit: int | None = None) -> None:
    """Render the example gallery (of one kind, or all; the first `limit`), raising if any fails."""
    from render.dispatch import render_in_process
    from render.examples import EXAMPLES

    chosen = [e for e in EXAMPLES if kind in (None, e[0])][:limit]
    for example_kind, name, code in chosen:
        result = render_in_process(example_kind, code)
        if not result.ok:
            raise RuntimeError(f"warm-up render of {example_kind} example {name!r} failed: {result.error}")


def _warm_up() -> None:
    """Import and exercise every renderer once, so tasks start warm."""
    for module in ("pandas", "seaborn"):
        try:
            __import__(module)
        except ImportError:
            pass
    _render_examples()
    from render.dispatch import render_traced
    from render.examples import EXAMPLES

    render_traced("chart", next(code for kind, _, code in EXAMPLES if kind == "chart"))  # the tracer too


def main(argv: list[str]) -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    conn = Connection(int(argv[1]))
    options = json.loads(argv[2])
    limits = sandbox.Limits(**options["limits"])
    report = sandbox.probe()
    missing = [name for name in sandbox.PROTECTIONS if not report[name]["active"]]
    if missing and not options["allow_weak_sandbox"]:
        conn.send(("refused", report))
        return
    active = frozenset(name for name in sandbox.PROTECTIONS if report[name]["active"])
    if "network_namespace" in active:
        sandbox.unshare(sandbox.CLONE_NEWNET)
    global _SECCOMP, _READABLE
    if "seccomp" in active:
        _SECCOMP = sandbox.seccomp_filter()
    _READABLE = sandbox.read_paths()
    _warm_up()
    gc.collect()
    gc.freeze()  # keep the warm heap shared copy-on-write across forks
    # One example per kind: the pages most renders of that kind write (interpreter, library state).
    # Learning from the whole gallery doubled the pages but hardly cut render time further.
    learned = {kind: prefault.learn(lambda kind=kind: _render_examples(kind, limit=1)) if options["prefault"] else ()
               for kind in KINDS}
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY) if "pid_namespace" in active else None
    base = tempfile.mkdtemp(prefix="visual-erm-render-")
    spare = TaskProcess(limits, active, base, own_pid_ns, learned["chart"])
    task = finished = None
    conn.send(("ready", report))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            task_id, request = message
            task, spare = spare, None
            task.start(request)
            # While the task renders: clean up the previous one and fork the next.
            if finished is not None:
                finished.close()
            spare = TaskProcess(limits, active, base, own_pid_ns, learned[request["kind"]])
            conn.send((task_id, task.collect()))
            finished, task = task, None
    finally:
        for leftover in (task, finished, spare):
            if leftover is not None:
                leftover.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
