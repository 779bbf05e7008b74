"""The warm worker: imports everything once, then forks a fresh jailed task per request.

Process tree for one task:
    zygote (network namespace without interfaces; never runs model code)
      -> task (PID 1 of a new PID namespace: unshare before the fork, setns
               back after it; enters the sandbox, renders, writes one
               length-prefixed frame to a pipe, exits)
Killing the task kills every process it could have made. The zygote reads the
frame with a deadline and a size cap, so a hostile task can only ever produce
a (harmless) image or an error.
"""
from __future__ import annotations

import ctypes
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

from render import sandbox
from render.trace_schema import MAX_TRACE_BYTES, shrink_trace, validate_trace

HEADER = struct.Struct(">II")  # header length, payload length
MAX_HEADER = 4096 + MAX_TRACE_BYTES  # room for an optional chart trace
MAX_PAYLOAD = 4096 * 4096 * 3
PR_SET_PDEATHSIG = 1


def _write_frame(fd: int, header: dict, payload: bytes = b"") -> None:
    head = json.dumps(header).encode()[:MAX_HEADER]
    data = memoryview(HEADER.pack(len(head), len(payload)) + head + payload)
    while data:
        data = data[os.write(fd, data):]


_SECCOMP = None  # the task filter, built once in the zygote


def _task_main(fd: int, request: dict, limits: sandbox.Limits, active: frozenset, workdir: str) -> None:
    """Runs in the task process; never returns."""
    from render.dispatch import render_array, render_traced
    from render.pycode import classify

    try:
        sandbox.enter(workdir, fd, limits, request["timeout_s"], active, _SECCOMP)
        if request.get("trace"):
            rgb, trace = render_traced(request["kind"], request["code"], request["size"])
        else:
            rgb, trace = render_array(request["kind"], request["code"], request["size"]), None
        header, payload = {"ok": True, "height": rgb.shape[0], "width": rgb.shape[1]}, rgb.tobytes()
        if trace is not None:
            header["trace"] = shrink_trace(trace)
    except BaseException as exc:  # noqa: BLE001 - every failure is data
        error = classify(exc, request["code"]).error
        header, payload = {"ok": False, "kind": error.kind, "message": error.message}, b""
    try:
        _write_frame(fd, header, payload)
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


def run_task(request: dict, limits: sandbox.Limits, active: frozenset, base: str, own_pid_ns: int | None) -> tuple:
    """Fork the task (PID 1 of a fresh PID namespace), collect its frame, clean up."""
    start = time.monotonic()
    deadline = start + request["timeout_s"]
    workdir = tempfile.mkdtemp(dir=base)
    result_r, result_w = os.pipe()
    if own_pid_ns is not None:
        sandbox.unshare(sandbox.CLONE_NEWPID)  # the next child is PID 1 of a new namespace
    task = os.fork()
    if task == 0:
        os.close(result_r)
        # Die with the zygote (seccomp keeps the task from undoing this); if the
        # zygote is already gone, nobody reads result_r: the pipe reports POLLERR.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        orphan_check = select.poll()
        orphan_check.register(result_w, 0)
        if orphan_check.poll(0):
            os._exit(1)
        _task_main(result_w, request, limits, active, workdir)
    if own_pid_ns is not None:
        sandbox.setns(own_pid_ns, sandbox.CLONE_NEWPID)  # so the next unshare may start another
    os.close(result_w)
    task_fd = os.pidfd_open(task)
    try:
        header, payload, timed_out = _read_frame(result_r, deadline)
        # Without a valid frame, give a dying task a moment; then (and always once
        # done) kill it: as PID 1 its death takes every process it made with it.
        if header is None and not timed_out:
            select.select([task_fd], [], [], 1.0)
        _kill(task_fd)
        _, status = os.waitpid(task, 0)
    finally:
        os.close(result_r)
        os.close(task_fd)
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - start
    if header is not None:
        return _validate(header, payload, seconds)
    if timed_out:
        return ("error", "timeout", f"exceeded the time limit of {request['timeout_s']:g} s", seconds)
    return ("error", *_exit_reason(status), seconds)


def _warm_up() -> None:
    """Import and exercise every renderer once, so tasks start warm."""
    from render.dispatch import render_in_process

    for module in ("pandas", "seaborn"):
        try:
            __import__(module)
        except ImportError:
            pass
    from render.examples import EXAMPLES

    for kind, name, code in EXAMPLES:
        result = render_in_process(kind, code)
        if not result.ok:
            raise RuntimeError(f"warm-up render of {kind} example {name!r} failed: {result.error}")
    from render.dispatch import render_traced

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
    if "seccomp" in active:
        global _SECCOMP
        _SECCOMP = sandbox.seccomp_filter()
    _warm_up()
    gc.collect()
    gc.freeze()  # keep the warm heap shared copy-on-write across forks
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY) if "pid_namespace" in active else None
    base = tempfile.mkdtemp(prefix="visual-erm-render-")
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
            conn.send((task_id, run_task(request, limits, active, base, own_pid_ns)))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
