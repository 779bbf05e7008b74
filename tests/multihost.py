"""Shared by the multi-host tests: run a test script as one process, or as two `jax.distributed`
processes on localhost (each script takes `[PROCESS_ID PORT]` after its own arguments)."""
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one_process(module: str, *args, timeout: float = 600) -> None:
    done = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


def run_two_processes(module: str, *args, timeout: float = 600) -> None:
    """Both processes write stderr to files: with pipes read one after the other, the second process
    blocked once XLA's warnings filled its 64 KiB pipe (inside a compile), and the first waited for it
    in the next collective for good."""
    port = str(_free_port())
    logs = [tempfile.TemporaryFile(mode="w+") for _ in (0, 1)]
    workers = [subprocess.Popen([sys.executable, "-m", module, *map(str, args), str(p), port], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=logs[p], text=True) for p in (0, 1)]
    try:
        deadline = time.monotonic() + timeout
        for worker, log in zip(workers, logs):
            worker.wait(timeout=max(deadline - time.monotonic(), 1))
            log.seek(0)
            assert worker.returncode == 0, log.read()[-3000:]
    finally:
        for worker, log in zip(workers, logs):
            if worker.poll() is None:
                worker.kill()
            log.close()
