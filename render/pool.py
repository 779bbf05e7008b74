"""RenderPool: warm sandboxed workers that render model code concurrently.

Each worker thread owns one zygote process (render/zygote.py) and feeds it one
task at a time from a bounded queue. The zygote forks a fresh jailed task per
request and hands its pipe ends to this thread, which writes the request and
reads the answer itself (render/wire.py), so the zygote never holds a request.
A zygote that stops answering is killed, its folder removed, and it is replaced
(retried with backoff); its task is reported as a runtime error, never raised.
If a worker cannot be restarted and none is left, queued and later requests
resolve to a `runtime` error: no future is ever left pending.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence

from render import cleanup, sandbox, wire
from render.errors import RenderInputError, RenderResult
from render.request import check_request, max_output_bytes, output_fits

_STOP = object()
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESTART_DELAYS_S = (0.0, 0.5, 2.0)  # backoff between attempts to replace a dead worker
SPARE_TIMEOUT_S = 60.0  # how long a zygote may take to fork and jail the next task


class SandboxUnavailable(RuntimeError):
    """The host lacks protections the pool requires (see `report`)."""

    def __init__(self, report: dict):
        self.report = report
        super().__init__(
            "render sandbox is incomplete on this host; pass allow_weak_sandbox=True to run anyway:\n"
            + sandbox.format_report(report)
        )


def _zygote_environment() -> dict:
    """A scrubbed environment: no tokens, keys or proxies reach the workers."""
    keep = {"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    keep["PYTHONPATH"] = _PACKAGE_ROOT
    keep.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "HOME", "FONTCONFIG_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            keep[name] = os.environ[name]
    return keep


def _exit_reason(status: int) -> tuple[str, str]:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        signum = -code
        if signum == signal.SIGXCPU:
            return "timeout", "exceeded its CPU-time limit"
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        return "runtime", f"the process crashed ({name})"
    return "runtime", f"the process exited with status {code} before producing an image"


def _write_before(fd: int, data: bytes, deadline: float) -> None:
    """Write all of `data` to a pipe before `deadline`, or raise TimeoutError."""
    os.set_blocking(fd, False)
    view = memoryview(data)
    while view:
        wait = deadline - time.monotonic()
        if wait <= 0 or not wire.wait_for(fd, select.POLLOUT, wait):
            raise TimeoutError("the task did not take its request")
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue


class _Zygote:
    """One warm worker process, its control socket, and the spare task it has handed over."""

    def __init__(self, options: dict, start_timeout_s: float):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock, self.base, self.spare = parent, None, None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "render.zygote", str(child.fileno()), json.dumps(options)],
            pass_fds=(child.fileno(),),
            env=_zygote_environment(),
            cwd=_PACKAGE_ROOT,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        try:
            message, fds = wire.recv_message(self.sock, start_timeout_s)
            for fd in fds:
                os.close(fd)
            if "refused" in message:
                raise SandboxUnavailable(message["refused"])
            if "failed" in message:
                raise RuntimeError(f"render worker failed to start: {message['failed']}")
            self.report, self.base = message["ready"], message["base"]
            self.spare = self._receive_spare(start_timeout_s)
        except (SandboxUnavailable, RuntimeError):
            self.kill()
            raise
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"render worker did not start within {start_timeout_s} s") from None
        except (EOFError, OSError, KeyError) as exc:
            self.kill()
            raise RuntimeError(f"render worker died during start-up with status {self.process.returncode} "
                               f"({type(exc).__name__}: {exc})") from None

    def _receive_spare(self, timeout_s: float) -> wire.Spare:
        message, fds = wire.recv_message(self.sock, timeout_s)
        if type(message.get("spare")) is not int or not isinstance(message.get("workdir"), str) or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise RuntimeError("render worker sent no spare task")
        return wire.Spare(message["spare"], message["workdir"], *fds)

    def render(self, request: dict) -> RenderResult:
        """Hand the request to the waiting task, read its frame, have the zygote reap it."""
        spare, self.spare = self.spare, None
        start = time.monotonic()
        deadline = start + request["timeout_s"]
        try:
            pidfd = os.pidfd_open(spare.pid)
        except OSError:
            pidfd = None  # the task is gone already; its frame will not come
        try:
            try:
                _write_before(spare.request_fd, json.dumps(request).encode(), deadline)
            except (BrokenPipeError, TimeoutError):
                pass  # the task is gone or stuck; the frame tells
            finally:
                os.close(spare.request_fd)
            wire.send_message(self.sock, {"start": spare.pid, "kind": request["kind"]})
            frame = wire.read_frame(spare.result_fd, deadline, max_output_bytes(request["kind"], request["size"]))
            if pidfd is not None:
                if frame.header is None and not frame.timed_out:
                    wire.wait_for(pidfd, select.POLLIN, 1.0)  # a dying task: let it finish, to say why
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # PID 1: takes all it made along
                except ProcessLookupError:
                    pass
        finally:
            os.close(spare.result_fd)
            if pidfd is not None:
                os.close(pidfd)
        seconds = time.monotonic() - start
        self.spare = self._receive_spare(SPARE_TIMEOUT_S)
        want_status = frame.header is None and not frame.timed_out and not frame.oversized
        wire.send_message(self.sock, {"done": spare.pid, "status": want_status})
        if frame.header is not None:
            def fits(width: int, height: int) -> bool:
                return output_fits(request["kind"], request["size"], width, height)

            return wire.to_result(frame.header, frame.payload, seconds, fits)
        if frame.oversized:
            return RenderResult.failure("invalid_output", "the render task returned a larger image than the "
                                        "request allows", seconds)
        if frame.timed_out:
            return RenderResult.failure("timeout", f"exceeded the time limit of {request['timeout_s']:g} s", seconds)
        message, _ = wire.recv_message(self.sock, SPARE_TIMEOUT_S)
        if type(message.get("status")) is not int:
            raise RuntimeError("render worker sent no exit status")
        if message.get("oom") is True:
            return RenderResult.failure("memory", "exceeded its memory limit (killed by the kernel's OOM killer "
                                        "in its own cgroup)", seconds)
        return RenderResult.failure(*_exit_reason(message["status"]), seconds)

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            wire.send_message(self.sock, {"retire": True})
            self.process.wait(timeout_s)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the zygote (its tasks die with it), close everything, remove its folder."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.sock.close()
        if self.spare is not None:
            os.close(self.spare.request_fd)
            os.close(self.spare.result_fd)
            self.spare = None
        if self.base is not None:
            cleanup.remove_tree(self.base, 10.0)


@dataclasses.dataclass
class _Task:
    future: concurrent.futures.Future
    request: dict


class RenderPool:
    """Sandboxed, warm, concurrent rendering: `map` keeps order, `submit` returns a Future.

    Args:
      workers: concurrent tasks (default: CPU count).
      timeout_s: default wall-clock limit per task.
      limits: per-task resource limits (sandbox.Limits).
      queue_size: bound on queued tasks; `submit` blocks when full.
      allow_weak_sandbox: start even where a protection is missing, including a task that
        would hold a capability (warns loudly).
      prefault: each waiting task pre-copies the pages a render of the last request's kind
        writes (render/prefault.py): lower latency for about the same CPU, so worth it only
        with idle cores; default: on when the pool has fewer workers than the host has cores.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout_s: float = 10.0,
        limits: sandbox.Limits = sandbox.Limits(),
        queue_size: int | None = None,
        allow_weak_sandbox: bool = False,
        start_timeout_s: float = 120.0,
        prefault: bool | None = None,
    ):
        cores = max(1, os.cpu_count() or 1)
        self.workers = workers or cores
        self.timeout_s = timeout_s
        self._options = {"limits": dataclasses.asdict(limits), "allow_weak_sandbox": allow_weak_sandbox,
                         "prefault": self.workers < cores if prefault is None else bool(prefault),
                         "start_timeout_s": start_timeout_s}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size or 4 * self.workers)
        self._lock = threading.Lock()
        self._closed = False
        self._live = self.workers
        self._threads, self._zygotes, self._errors = [], [None] * self.workers, []
        for stale in cleanup.stale_bases():  # left by zygotes that were killed with their pool
            cleanup.remove_tree(stale, 10.0)
        started = [threading.Event() for _ in range(self.workers)]
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._serve, args=(index, started[index], start_timeout_s), daemon=True,
                name=f"render-worker-{index}",
            )
            thread.start()
            self._threads.append(thread)
        for event in started:
            event.wait()
        if self._errors:
            self.close()
            raise self._errors[0]
        self.report = self._zygotes[0].report
        if any(not self.report[name]["active"] for name in sandbox.PROTECTIONS):
            warnings.warn(sandbox.weakness(self.report), RuntimeWarning, stacklevel=2)

    def _serve(self, index: int, started: threading.Event, start_timeout_s: float) -> None:
        # The zygote is started by this thread so PR_SET_PDEATHSIG follows its life.
        try:
            zygote = self._zygotes[index] = _Zygote(self._options, start_timeout_s)
        except BaseException as exc:
            self._errors.append(exc)
            started.set()
            self._worker_gone()
            return
        started.set()
        while zygote is not None:
            task = self._queue.get()
            if task is _STOP:
                break
            if not task.future.set_running_or_notify_cancel():
                continue
            try:
                result = zygote.render(task.request)
            except Exception as exc:
                zygote.kill()
                result = RenderResult.failure("runtime", f"render worker failed ({exc}); restarted")
                zygote = None
            task.future.set_result(result)
            if zygote is None:
                zygote = self._zygotes[index] = self._restart(start_timeout_s)
        if zygote is not None:
            zygote.close()
        else:
            self._worker_gone()

    def _restart(self, start_timeout_s: float) -> _Zygote | None:
        """A fresh zygote, retried with backoff; None (the error recorded) when every attempt failed."""
        for delay in RESTART_DELAYS_S:
            time.sleep(delay)
            if self._closed:
                return None
            try:
                return _Zygote(self._options, start_timeout_s)
            except BaseException as exc:
                error = exc
        self._errors.append(error)
        return None

    def _worker_gone(self) -> None:
        with self._lock:
            self._live -= 1
        self._fail_queued()

    def _fail_queued(self) -> None:
        """Resolve every queued request when no worker is left to take it."""
        if self._live > 0:
            return
        reason = f"no render worker is left ({self._errors[-1] if self._errors else 'pool closed'})"
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                return
            if task is not _STOP and task.future.set_running_or_notify_cancel():
                task.future.set_result(RenderResult.failure("runtime", reason))

    def submit(self, kind: str, code: str, *, size=None, timeout_s: float | None = None,
               trace: bool = False) -> concurrent.futures.Future:
        """Queue one render; the Future resolves to a RenderResult (never raises).

        `trace=True`: a chart's result also carries `trace` (render/trace.py: texts, chart types,
        colours, subplot layout); tables and SVGs have none.
        """
        if self._closed:
            raise RuntimeError("RenderPool is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            check_request(kind, code, size)
        except RenderInputError as exc:
            future.set_result(RenderResult(error=exc.error))
            return future
        size = tuple(size) if size is not None else None
        request = {"kind": kind, "code": code, "size": size, "timeout_s": float(timeout_s or self.timeout_s),
                   "trace": bool(trace)}
        self._queue.put(_Task(future, request))
        self._fail_queued()  # the last worker may have died while we queued
        return future

    def map(self, kinds: Sequence[str], codes: Sequence[str], *, size=None, timeout_s=None,
            trace: bool = False, timeout: float | None = None) -> list[RenderResult]:
        """Render many; results in input order. `kinds` may be one string for all.

        `timeout`: seconds for the whole call; renders not finished by then come back as
        `timeout` errors (and are cancelled if they had not started).
        """
        codes = list(codes)
        kinds = [kinds] * len(codes) if isinstance(kinds, str) else list(kinds)
        if len(kinds) != len(codes):
            raise ValueError(f"{len(kinds)} kinds for {len(codes)} codes")
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self.submit(k, c, size=size, timeout_s=timeout_s, trace=trace) for k, c in zip(kinds, codes)]
        results = []
        for future in futures:
            try:
                results.append(future.result(None if deadline is None else max(0.0, deadline - time.monotonic())))
            except concurrent.futures.TimeoutError:
                future.cancel()
                results.append(RenderResult.failure("timeout", f"map did not finish within {timeout:g} s"))
        return results

    def close(self) -> None:
        """Stop the workers; leaves no process or folder behind and no future pending. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for thread in self._threads:
            if thread.is_alive():
                self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        with self._lock:
            self._live = 0
        self._fail_queued()

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_pool: RenderPool | None = None
_default_lock = threading.Lock()


def default_pool() -> RenderPool:
    """A process-wide single-worker pool for `render.render`, closed at exit."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = RenderPool(workers=1)
            atexit.register(_default_pool.close)
        return _default_pool


def render(kind: str, code: str, *, size=None, timeout_s: float = 10.0) -> RenderResult:
    """Render one piece of model code in the sandbox (through a shared warm worker)."""
    return default_pool().submit(kind, code, size=size, timeout_s=timeout_s).result()


def sandbox_report(limits: sandbox.Limits = sandbox.Limits()) -> dict[str, dict]:
    """Which protections are active, as a task really has them: a fresh zygote forks one task
    the way it forks every task and asks it (uid, capability sets, namespaces, rlimits, task-dir
    capacity: the "task" field of the "no_privileges" entry); each protection's entry says whether
    that task showed it."""
    options = {"limits": dataclasses.asdict(limits), "allow_weak_sandbox": True, "prefault": False}
    out = subprocess.run(
        [sys.executable, "-m", "render.zygote", "--report", json.dumps(options)], env=_zygote_environment(),
        cwd=_PACKAGE_ROOT, capture_output=True, text=True, check=True, timeout=120,
    )
    return json.loads(out.stdout)
