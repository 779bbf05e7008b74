"""Shared by the multi-host tests: run a test script as one process, or as two `jax.distributed`
processes on localhost (each script takes `[PROCESS_ID PORT]` after its own arguments)."""
import os
import socket
import subprocess
import sys

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
    port = str(_free_port())
    workers = [subprocess.Popen([sys.executable, "-m", module, *map(str, args), str(p), port], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    try:
        for worker in workers:
            _, err = worker.communicate(timeout=timeout)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
