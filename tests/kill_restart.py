"""Shared by the SFT and GRPO resume tests: run a training command straight through, and again
with a SIGKILL mid-run followed by a restart of the same command; return both metric logs.
The work directories may be local or gs:// URLs (`policy.paths`)."""
import os
import signal
import subprocess
import sys
import time

from policy import paths
from policy.metric_writers import read_jsonl


def launch_main(root, workdir, flags, cwd=None):
    """`python -m launch.main` in `cwd` (default: the repository), importing the repository's code."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "launch.main", f"--workdir={workdir}", *flags], cwd=cwd or root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout):
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]


def straight_and_resumed(root, base, flags, *, kill_after_records: int, timeout: float = 900, cwd=None):
    """(metrics of the uninterrupted run BASE/straight, metrics of the killed-and-restarted run BASE/killed)."""
    straight, killed_dir = paths.join(base, "straight"), paths.join(base, "killed")
    _finish(launch_main(root, straight, flags, cwd), timeout)
    killed = launch_main(root, killed_dir, flags, cwd)
    log = paths.join(killed_dir, "metrics.jsonl")
    deadline = time.time() + timeout
    while time.time() < deadline and killed.poll() is None:
        if paths.exists(log) and len(read_jsonl(log)) >= kill_after_records:
            break
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    _finish(launch_main(root, killed_dir, flags, cwd), timeout)
    return read_jsonl(paths.join(straight, "metrics.jsonl")), read_jsonl(log)
