"""RenderPool: warm sandboxed workers that render model code concurrently.

Each worker thread owns one zygote process (render/zygote.py) and feeds it one
task at a time from a bounded queue; the zygote forks a fresh jailed process per
task. A zygote that stops answering is killed and replaced; its task is
reported as a runtime error, never raised.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import warnings
from multiprocessing.connection import Connection
from typing import Optional, Sequence

from PIL import Image

from render import sandbox
from render.errors import RenderInputError, RenderResult
from render.request import check_request

_STOP = object()
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


class _Zygote:
    """One warm worker process and its connection."""

    def __init__(self, options: dict, start_timeout_s: float):
        parent, child = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "render.zygote", str(child.fileno()), json.dumps(options)],
            pass_fds=(child.fileno(),),
            env=_zygote_environment(),
            cwd=_PACKAGE_ROOT,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self.conn = Connection(parent.detach())
        if not self.conn.poll(start_timeout_s):
            self.kill()
            raise RuntimeError(f"render worker did not start within {start_timeout_s} s")
        status, self.report = self.conn.recv()
        if status != "ready":
            self.kill()
            raise SandboxUnavailable(self.report)

    def render(self, task_id: int, request: dict) -> tuple:
        self.conn.send((task_id, request))
        if not self.conn.poll(request["timeout_s"] + 30.0):
            raise TimeoutError("render worker stopped answering")
        answer_id, reply = self.conn.recv()
        if answer_id != task_id:
            raise RuntimeError("render worker answered out of order")
        return reply

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            self.conn.send(None)
            self.process.wait(timeout_s)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.conn.close()


@dataclasses.dataclass
class _Task:
    future: concurrent.futures.Future
    request: dict


def _to_result(reply: tuple) -> RenderResult:
    if reply[0] == "image":
        _, width, height, payload, seconds, *trace = reply
        image = Image.frombytes("RGB", (width, height), payload)
        return RenderResult(image=image, seconds=seconds, trace=trace[0] if trace else None)
    _, kind, message, seconds = reply
    return RenderResult.failure(kind, message, seconds)


class RenderPool:
    """Sandboxed, warm, concurrent rendering: `map` keeps order, `submit` returns a Future.

    Args:
      workers: concurrent tasks (default: CPU count).
      timeout_s: default wall-clock limit per task.
      limits: per-task resource limits (sandbox.Limits).
      queue_size: bound on queued tasks; `submit` blocks when full.
      allow_weak_sandbox: start even where a protection is missing (warns loudly).
      prefault: each waiting task pre-copies the pages a render of the last request's kind
        writes (render/prefault.py): lower latency for about the same CPU, so worth it only
        with idle cores; default: on when the pool has fewer workers than the host has cores.
    """

    def __init__(
        self,
        workers: Optional[int] = None,
        *,
        timeout_s: float = 10.0,
        limits: sandbox.Limits = sandbox.Limits(),
        queue_size: Optional[int] = None,
        allow_weak_sandbox: bool = False,
        start_timeout_s: float = 120.0,
        prefault: Optional[bool] = None,
    ):
        cores = max(1, os.cpu_count() or 1)
        self.workers = workers or cores
        self.timeout_s = timeout_s
        self._options = {"limits": dataclasses.asdict(limits), "allow_weak_sandbox": allow_weak_sandbox,
                         "prefault": self.workers < cores if prefault is None else bool(prefault)}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size or 4 * self.workers)
        self._lock = threading.Lock()
        self._next_id = 0
        self._closed = False
        self._threads, self._zygotes, self._errors = [], [None] * self.workers, []
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
        missing = [n for n, entry in self.report.items() if not entry["active"]]
        if missing:
            warnings.warn(
                "RenderPool running with a WEAK sandbox; missing: " + ", ".join(missing) + "\n"
                + sandbox.format_report(self.report),
                RuntimeWarning,
                stacklevel=2,
            )

    def _serve(self, index: int, started: threading.Event, start_timeout_s: float) -> None:
        # The zygote is started by this thread so PR_SET_PDEATHSIG follows its life.
        try:
            self._zygotes[index] = _Zygote(self._options, start_timeout_s)
        except BaseException as exc:  # noqa: BLE001
            self._errors.append(exc)
            started.set()
            return
        started.set()
        while True:
            task = self._queue.get()
            if task is _STOP:
                break
            if not task.future.set_running_or_notify_cancel():
                continue
            task_id = self._take_id()
            try:
                reply = self._zygotes[index].render(task_id, task.request)
                task.future.set_result(_to_result(reply))
            except Exception as exc:  # noqa: BLE001 - the zygote died or hung
                self._zygotes[index].kill()
                task.future.set_result(RenderResult.failure("runtime", f"render worker failed ({exc}); restarted"))
                try:
                    self._zygotes[index] = _Zygote(self._options, start_timeout_s)
                except BaseException as restart_error:  # noqa: BLE001
                    self._errors.append(restart_error)
                    break
        self._zygotes[index].close()

    def _take_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def submit(self, kind: str, code: str, *, size=None, timeout_s: Optional[float] = None,
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
        return future

    def map(self, kinds: Sequence[str], codes: Sequence[str], *, size=None, timeout_s=None,
            trace: bool = False) -> list[RenderResult]:
        """Render many; results in input order. `kinds` may be one string for all."""
        codes = list(codes)
        kinds = [kinds] * len(codes) if isinstance(kinds, str) else list(kinds)
        if len(kinds) != len(codes):
            raise ValueError(f"{len(kinds)} kinds for {len(codes)} codes")
        futures = [self.submit(k, c, size=size, timeout_s=timeout_s, trace=trace) for k, c in zip(kinds, codes)]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop the workers; leaves no process behind. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for thread in self._threads:
            if thread.is_alive():
                self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_pool: Optional[RenderPool] = None
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


def sandbox_report() -> dict[str, dict]:
    """Which protections are active on this host (probed in a fresh process)."""
    out = subprocess.run(
        [sys.executable, "-m", "render.sandbox"], env=_zygote_environment(), cwd=_PACKAGE_ROOT,
        capture_output=True, text=True, check=True, timeout=60,
    )
    return json.loads(out.stdout)
