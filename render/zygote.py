"""The warm worker: imports everything once, then forks a fresh jailed task per request.

Process tree for one task:
    zygote (network namespace without interfaces; never runs model code, never sees a request)
      -> task (PID 1 of a new PID namespace: unshare before the fork, setns
               back after it; enters the sandbox, waits for its request on a
               pipe, renders, writes one frame (render/wire.py) to a pipe, exits)
Killing the task kills every process it could have made.

The zygote keeps one task forked and jailed before its request arrives and hands its two
pipe ends to the pool over a SOCK_SEQPACKET socket: the pool writes the request and reads the
frame itself. So every task is forked from a process whose memory never held any request or
result, not even freed. Messages (pool -> zygote): {"start": pid, "kind": k} (fork the next
spare, prefaulted for kind k), {"done": pid, "status": bool} (kill, reap, clean up; answer
{"status": waitstatus} when asked), {"retire": true}. Fork, jail and clean-up overlap the
rendering instead of adding to a request's latency.
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import json
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import time

from render import cgroup, cleanup, prefault, privileges, sandbox, syscalls, wire
from render.request import KINDS

PR_SET_PDEATHSIG = 1
RESULT_PIPE_BYTES = 1 << 21
MAX_REQUEST_BYTES = 8 << 20  # 1M chars of UTF-8 and the JSON around them
CLEANUP_BUDGET_S = 0.2  # per reaped task; the rest waits for the next idle moment
DEFAULT_START_TIMEOUT_S = 120.0  # how long the probe task may take to answer (RenderPool passes its own)

_SECCOMP = None  # the task filter, built once in the zygote
_READABLE: list[str] = []  # the task's Landlock read list, computed once in the zygote
_EXPOSURE: list = []  # read paths behind folders the task's uid cannot pass (sandbox.exposure_plan)
_CGROUPS: cgroup.TaskCgroups | None = None  # per-task memory cgroups, where the host delegates them
_SERIALS = itertools.count(1)  # numbers this zygote's tasks: their uid and cgroup (privileges.task_id)


def _read_request(fd: int) -> dict | None:
    """The request the pool writes to a waiting task; None when the task is retired unused."""
    chunks, size = [], 0
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
    os.close(fd)
    return json.loads(b"".join(chunks)) if chunks else None


def _probe_answer(workdir: str) -> dict:
    """What a jailed task holds: privileges, namespaces, limits and its dir's capacity."""
    facts = privileges.facts()
    names = {"address_space": resource.RLIMIT_AS, "open_files": resource.RLIMIT_NOFILE,
             "file_size": resource.RLIMIT_FSIZE, "processes": resource.RLIMIT_NPROC, "core": resource.RLIMIT_CORE}
    facts["rlimits"] = {name: resource.getrlimit(limit)[1] for name, limit in names.items()}
    disk = os.statvfs(workdir)
    facts["task_dir"] = {"bytes": disk.f_blocks * disk.f_frsize, "inodes": disk.f_files}
    return facts


def _task_main(request_fd: int, result_fd: int, limits: sandbox.Limits, active: frozenset, workdir: str,
               uid: int) -> None:
    """Runs in the task process: jail itself, wait for the request, render it; never returns."""
    from render.dispatch import render_array, render_traced
    from render.pycode import classify
    from render.trace_schema import shrink_trace

    request = None
    try:
        sandbox.enter(workdir, (request_fd, result_fd), limits, active, readable=_READABLE, seccomp=_SECCOMP,
                      exposure=_EXPOSURE, uid=uid, memory_cgroup=_CGROUPS is not None)
        request = _read_request(request_fd)
        if request is None:
            os._exit(0)
        sandbox.limit_own_cpu(request.get("timeout_s", 30.0))
        if request.get("probe"):
            header, payload = {"ok": False, "kind": "runtime", "message": "probe", "probe": _probe_answer(workdir)}, b""
        elif request.get("trace"):
            rgb, trace = render_traced(request["kind"], request["code"], request["size"])
            header, payload = {"ok": True, "height": rgb.shape[0], "width": rgb.shape[1]}, rgb.tobytes()
            if trace is not None:
                header["trace"] = shrink_trace(trace)
        else:
            rgb = render_array(request["kind"], request["code"], request["size"])
            header, payload = {"ok": True, "height": rgb.shape[0], "width": rgb.shape[1]}, rgb.tobytes()
    except BaseException as exc:
        error = classify(exc, request["code"] if request and "code" in request else "").error
        header, payload = {"ok": False, "kind": error.kind, "message": error.message}, b""
    try:
        wire.write_frame(result_fd, header, payload)
    finally:
        os._exit(0)


class TaskProcess:
    """One jailed task, forked (PID 1 of a fresh PID namespace) *before* its request arrives.

    It is a fresh copy of the zygote, which never runs model code and never holds a request:
    no task sees another's state. It leads its own session and process group and takes its own
    uid, so no process-group, user or per-uid call (priority, I/O class, signals, RLIMIT_NPROC)
    of one task reaches another, the spare, or the zygote; where the host delegates cgroups it
    runs in its own memory cgroup. `hand_out` gives its pipe ends to the pool; `close` kills,
    reaps and removes its directory and cgroup.
    """

    def __init__(self, limits: sandbox.Limits, active: frozenset, base: str, own_pid_ns: int | None,
                 prefault_ranges=()):
        self.workdir = tempfile.mkdtemp(dir=base)
        serial = next(_SERIALS)
        uid = privileges.task_id(os.getpid(), serial)
        self.cgroup = _CGROUPS.make_task(serial) if _CGROUPS is not None else None
        request_r, self.request_w = os.pipe()
        self.result_r, result_w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(result_w, fcntl.F_SETPIPE_SZ, RESULT_PIPE_BYTES)  # a chart in one write
        except OSError:
            pass
        if own_pid_ns is not None:
            sandbox.unshare(sandbox.CLONE_NEWPID)  # the next child is PID 1 of a new namespace
        pid = os.fork()
        if pid == 0:
            os.setsid()  # its own session and process group, before anything else
            os.close(self.request_w)
            os.close(self.result_r)
            # Die with the zygote (seccomp keeps the task from undoing this); if the
            # zygote is already gone, nobody reads result_r: the pipe reports POLLERR.
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            orphan_check = select.poll()
            orphan_check.register(result_w, 0)
            if orphan_check.poll(0):
                os._exit(1)
            if self.cgroup is not None:
                try:
                    cgroup.TaskCgroups.join(self.cgroup)
                except OSError:
                    os._exit(1)  # never unwind into the zygote's code; the pool reports the exit
            prefault.populate(prefault_ranges)
            _task_main(request_r, result_w, limits, active, self.workdir, uid)
        if own_pid_ns is not None:
            sandbox.setns(own_pid_ns, sandbox.CLONE_NEWPID)  # so the next unshare may start another
        os.close(request_r)
        os.close(result_w)
        # The zygote is the parent: until it reaps the task, the pid cannot name another process.
        self.pid, self._status, self.oom_killed = pid, None, False

    def hand_out(self, sock: socket.socket) -> None:
        """Give the pool the request and result pipe ends (the zygote keeps no copy)."""
        wire.send_message(sock, {"spare": self.pid, "workdir": self.workdir}, (self.request_w, self.result_r))
        self._close_pipes()

    def _close_pipes(self) -> None:
        for fd in (self.request_w, self.result_r):
            if fd is not None:
                os.close(fd)
        self.request_w = self.result_r = None

    def close(self, leftovers: list[str]) -> int:
        """Kill, reap, and remove the task's directory within a budget and its cgroup (else add
        them to `leftovers`); the wait status. `oom_killed` then says whether the kernel's OOM
        killer ended it."""
        self._close_pipes()
        if self._status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # exited; not reaped yet, so the pid was still ours
            _, self._status = os.waitpid(self.pid, 0)
            if not cleanup.remove_tree(self.workdir, CLEANUP_BUDGET_S):
                leftovers.append(self.workdir)
            if self.cgroup is not None:
                self.oom_killed = cgroup.TaskCgroups.oom_killed(self.cgroup)
                if not cgroup.TaskCgroups.close_task(self.cgroup):
                    leftovers.append(self.cgroup)
        return self._status


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


def _probe_task(limits, active, base, own_pid_ns, timeout_s: float) -> dict:
    """Fork one task exactly as for a request and ask it what it holds (before any request exists)."""
    task = TaskProcess(limits, active, base, own_pid_ns)
    try:
        wire.write_all(task.request_w, json.dumps({"probe": True}).encode())
        os.close(task.request_w)
        task.request_w = None
        frame = wire.read_frame(task.result_r, time.monotonic() + timeout_s)
    finally:
        task.close([])
    facts = (frame.header or {}).get("probe")
    if not isinstance(facts, dict):
        raise RuntimeError("the probe task gave no answer")
    return facts


def _remove_leftover(path: str) -> bool:
    """A task's directory or cgroup that could not be removed when it was reaped."""
    if _CGROUPS is not None and path.startswith(_CGROUPS.base + os.sep):
        return cgroup.remove_tree(path)
    return cleanup.remove_tree(path, CLEANUP_BUDGET_S)


def judge_task(report: dict, facts: dict, host_namespaces: dict) -> None:
    """Overwrite the report's entries with what a real task showed (not what the kernel offers)."""
    caps = facts["caps"]
    held = {name: f"{value:#x}" for name, value in caps.items() if value}
    if held or 0 in facts["uid"]:
        why = " (no mount namespace to re-expose a Python only root can reach)" if not held else ""
        report["no_privileges"] = {"active": False, "detail": f"a task runs as uid {facts['uid']} holding {held}{why}"}
    else:
        report["no_privileges"] = {"active": True, "detail": (
            f"uid/gid {facts['uid'][0]}/{facts['gid'][0]} (one per task), no capability in any set, "
            f"no_new_privs {facts['no_new_privs']}, securebits {facts['securebits']:#x}")}
    report["no_privileges"]["task"] = facts  # uid, capability sets, namespaces, rlimits, task-dir size
    if not facts.get("session_leader"):
        report["no_privileges"]["detail"] += "; NOT its own session (shares the zygote's process group)"
    shared = [name for name in ("net", "pid", "ipc", "uts", "mnt")
              if facts["namespaces"].get(name) == host_namespaces.get(name)]
    for protection, names in (("network_namespace", ["net"]), ("pid_namespace", ["pid"]),
                              ("private_namespaces", ["ipc", "uts", "mnt"])):
        if report[protection]["active"] and set(names) & set(shared):
            report[protection] = {"active": False, "detail": f"a task shares the host's {', '.join(names)} namespace"}
    if report["private_namespaces"]["active"]:
        disk = facts["task_dir"]
        report["private_namespaces"]["detail"] += f" ({disk['bytes'] >> 20} MiB, {disk['inodes']} inodes)"


def _setup(options: dict):
    """Probe the host, enter the zygote's own network namespace, fork one probe task.

    -> (report, active, limits, base, own_pid_ns)."""
    limits = sandbox.Limits(**options["limits"])
    report = sandbox.probe()
    active = frozenset(name for name in sandbox.PROTECTIONS if report[name]["active"])
    host_namespaces = privileges.host_namespaces()
    if "network_namespace" in active:
        sandbox.unshare(sandbox.CLONE_NEWNET)
    global _SECCOMP, _READABLE, _EXPOSURE, _CGROUPS
    _CGROUPS, detail = cgroup.probe((limits.memory_mb + limits.disk_mb) << 20, limits.max_processes)
    report["memory_cgroup"] = {"active": _CGROUPS is not None, "detail": detail}
    if "seccomp" in active:
        _SECCOMP = syscalls.seccomp_filter()
    _READABLE = sandbox.read_paths()
    _EXPOSURE = sandbox.exposure_plan(_READABLE)
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY) if "pid_namespace" in active else None
    base = tempfile.mkdtemp(prefix=f"{cleanup.BASE_PREFIX}{os.getpid()}-")
    os.chmod(base, 0o711)  # an unprivileged task must pass through to its own dir
    # Within the pool's start-up budget: on a starved host (a nice-10 pool beside nice -5 jobs)
    # a fixed 30 s was too short for the first task to jail itself and answer.
    probe_timeout_s = float(options.get("start_timeout_s", DEFAULT_START_TIMEOUT_S))
    judge_task(report, _probe_task(limits, active, base, own_pid_ns, probe_timeout_s), host_namespaces)
    return report, active, limits, base, own_pid_ns


def _serve(sock: socket.socket, limits, active, base, own_pid_ns, learned) -> None:
    tasks: dict[int, TaskProcess] = {}
    leftovers: list[str] = []
    spare = TaskProcess(limits, active, base, own_pid_ns, learned["chart"])
    try:
        spare.hand_out(sock)
        tasks[spare.pid] = spare
        while True:
            try:
                message, fds = wire.recv_message(sock, None)
            except (EOFError, OSError):
                break
            for fd in fds:
                os.close(fd)
            if "start" in message:
                kind = message.get("kind") if message.get("kind") in KINDS else "chart"
                spare = TaskProcess(limits, active, base, own_pid_ns, learned[kind])
                spare.hand_out(sock)
                tasks[spare.pid] = spare
                leftovers = [path for path in leftovers if not _remove_leftover(path)]
            elif "done" in message:
                task = tasks.pop(message["done"], None)
                status = task.close(leftovers) if task is not None else 0
                if message.get("status"):
                    wire.send_message(sock, {"status": status, "oom": task is not None and task.oom_killed})
            else:
                break
    finally:
        for task in tasks.values():
            task.close(leftovers)


def _release(base: str | None) -> None:
    if base is not None:
        cleanup.remove_tree(base, 30.0)
    if _CGROUPS is not None:
        _CGROUPS.close()


def main(argv: list[str]) -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    options = json.loads(argv[2])
    if argv[1] == "--report":
        report, *_, base, _ = _setup(options)
        _release(base)
        print(json.dumps(report))
        return
    sock = socket.socket(fileno=int(argv[1]))
    base = None
    try:
        report, active, limits, base, own_pid_ns = _setup(options)
        missing = [name for name in sandbox.PROTECTIONS if not report[name]["active"]]
        if missing and not options["allow_weak_sandbox"]:
            wire.send_message(sock, {"refused": report})
            _release(base)
            return
        _warm_up()
        gc.collect()
        gc.freeze()  # keep the warm heap shared copy-on-write across forks
        # One example per kind: the pages most renders of that kind write (interpreter, library state).
        # Learning from the whole gallery doubled the pages but hardly cut render time further.
        learned = {kind: prefault.learn(lambda kind=kind: _render_examples(kind, limit=1))
                   if options["prefault"] else () for kind in KINDS}
    except BaseException as exc:
        # Say why instead of just dying: the pool would only see the socket close.
        wire.send_message(sock, {"failed": f"{type(exc).__name__}: {exc}"[:2000]})
        _release(base)
        raise
    try:
        wire.send_message(sock, {"ready": report, "base": base})
        _serve(sock, limits, active, base, own_pid_ns, learned)
    finally:
        _release(base)


if __name__ == "__main__":
    main(sys.argv)
