"""Shared by the SFT and GRPO resume tests: run a training command straight through, and again
with a SIGKILL mid-run followed by a restart of the same command; return both metric logs."""
import signal
import subprocess
import sys
import time

from policy.metric_writers import read_jsonl


def launch_main(root, workdir, flags):
    return subprocess.Popen([sys.executable, "-m", "launch.main", f"--workdir={workdir}", *flags], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout):
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]


def straight_and_resumed(root, tmp_path, flags, *, kill_after_records: int, timeout: float = 900):
    """(metrics of the uninterrupted run, metrics of the killed-and-restarted run)."""
    _finish(launch_main(root, tmp_path / "straight", flags), timeout)
    killed = launch_main(root, tmp_path / "killed", flags)
    log = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline and killed.poll() is None:
        if log.exists() and len(read_jsonl(str(log))) >= kill_after_records:
            break
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    _finish(launch_main(root, tmp_path / "killed", flags), timeout)
    return read_jsonl(str(tmp_path / "straight" / "metrics.jsonl")), read_jsonl(str(log))
