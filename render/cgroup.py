"""A memory limit the kernel enforces per task: one cgroup v2 per task, joined before it jails itself.

`RLIMIT_AS` counts address space only: pages pinned into pipes, page tables and other kernel
memory escape it. A cgroup v2's `memory.max` counts all of them (and tmpfs pages), so the
OOM killer picks the task, not some other process of the host. Each zygote makes its own
cgroup `visual-erm-render-<pid>` beside the one it runs in (the parent must delegate the
memory and pids controllers, as systemd's `Delegate=` or a container runtime does) and a
child cgroup per task with `memory.max`, `memory.swap.max = 0`, `memory.oom.group = 1` and
`pids.max`. The task writes itself into it right after the fork, while it is still root and
before any model code runs; the zygote reads its `memory.events` when it reaps it (an OOM kill
is reported as `memory`) and removes it.

Where no writable cgroup v2 with those controllers exists (cgroup v1 hosts, most containers,
Colab), `probe` says why, and the task falls back to what it can do for itself
(render/sandbox.py: transparent huge pages off, vmsplice denied by seccomp).
"""
from __future__ import annotations

import os

PREFIX = "visual-erm-render-"
CONTROLLERS = ("memory", "pids")


def _mount_point() -> str | None:
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup2":
                return fields[4]
    return None


def _own_path() -> str | None:
    with open("/proc/self/cgroup") as groups:
        for line in groups:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _remove_stale(parent: str) -> None:
    """Cgroups left by zygotes that were killed (an empty cgroup can be removed)."""
    for name in os.listdir(parent):
        pid = name[len(PREFIX):]
        if name.startswith(PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            remove_tree(os.path.join(parent, name))


def remove_tree(path: str) -> bool:
    """rmdir a cgroup and its children, deepest first; whether it is gone."""
    for root, dirs, _ in os.walk(path, topdown=False):
        for name in dirs:
            try:
                os.rmdir(os.path.join(root, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _joins(path: str) -> str | None:
    """Whether a forked child can move itself into the cgroup at `path`: None, else why not."""
    from render.sandbox import answer_of_child

    def produce() -> bytes:
        try:
            TaskCgroups.join(path)
            return b"ok"
        except OSError as exc:
            return str(exc).encode()[:200]

    answer = answer_of_child(produce).decode(errors="replace")
    return None if answer == "ok" else (answer or "the child died")


class TaskCgroups:
    """This zygote's cgroup, with one child cgroup per task."""

    def __init__(self, base: str, memory_bytes: int, max_pids: int):
        self.base, self.memory_bytes, self.max_pids = base, memory_bytes, max_pids

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int) -> TaskCgroups:
        """This zygote's cgroup; OSError saying why where the host gives none.

        It goes where the memory and pids controllers are enabled for children: in the zygote's
        own cgroup where that may hold children (the root of a hierarchy, or one whose
        controllers can still be enabled), else beside it, in its parent (the usual delegation:
        the pool runs in a leaf such as X/main, and X enables the controllers for X's children).
        """
        mount, own = _mount_point(), _own_path()
        if mount is None or own is None:
            raise OSError("no cgroup v2 hierarchy (cgroup v1 host or container)")
        own_dir = os.path.join(mount, own.lstrip("/"))
        available = _read(os.path.join(own_dir, "cgroup.controllers")).split()
        if not set(CONTROLLERS) <= set(available):
            raise OSError(f"cgroup v2 at {own_dir} offers {available or 'no controllers'}, "
                          f"not {' and '.join(CONTROLLERS)}")
        reasons = []
        candidates = [own_dir] + ([os.path.dirname(own_dir.rstrip("/"))] if own.strip("/") else [])
        for parent in candidates:
            try:
                return cls._create_in(parent, memory_bytes, max_pids)
            except OSError as exc:
                reasons.append(f"{parent}: {exc}")
        raise OSError("; ".join(reasons))

    @classmethod
    def _create_in(cls, parent: str, memory_bytes: int, max_pids: int) -> TaskCgroups:
        enabled = _read(os.path.join(parent, "cgroup.subtree_control")).split()
        if not set(CONTROLLERS) <= set(enabled):
            # Works only where the parent holds no process itself (the "no internal process" rule).
            _write(os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in CONTROLLERS))
        _remove_stale(parent)
        base = os.path.join(parent, f"{PREFIX}{os.getpid()}")
        os.mkdir(base, 0o700)
        try:
            _write(os.path.join(base, "cgroup.subtree_control"), " ".join(f"+{c}" for c in CONTROLLERS))
            groups = cls(base, memory_bytes, max_pids)
            trial = groups.make_task(0)  # tasks count from 1
            joined = _joins(trial)
            groups.close_task(trial)
            if joined is not None:
                raise OSError(f"a task cannot join its cgroup ({joined})")
        except OSError:
            remove_tree(base)
            raise
        return groups

    def make_task(self, serial: int) -> str:
        """A fresh cgroup for one task, limits set; the task joins it with `join`."""
        path = os.path.join(self.base, f"task-{serial}")
        os.mkdir(path, 0o700)
        _write(os.path.join(path, "memory.max"), str(self.memory_bytes))
        if os.path.exists(os.path.join(path, "memory.swap.max")):  # absent without swap accounting
            _write(os.path.join(path, "memory.swap.max"), "0")
        _write(os.path.join(path, "memory.oom.group"), "1")
        _write(os.path.join(path, "pids.max"), str(self.max_pids))
        return path

    @staticmethod
    def join(path: str) -> None:
        """Move the calling process into the task's cgroup (in the task, still privileged)."""
        _write(os.path.join(path, "cgroup.procs"), "0")

    @staticmethod
    def oom_killed(path: str) -> bool:
        """Whether the kernel's OOM killer struck inside this task's cgroup."""
        try:
            events = dict(line.split() for line in _read(os.path.join(path, "memory.events")).splitlines())
        except (OSError, ValueError):
            return False
        return int(events.get("oom_kill", "0")) > 0 or int(events.get("oom_group_kill", "0")) > 0

    @staticmethod
    def close_task(path: str) -> bool:
        """Remove a reaped task's cgroup; False while it is still busy (retry later)."""
        return remove_tree(path)

    def close(self) -> None:
        remove_tree(self.base)


def probe(memory_bytes: int, max_pids: int) -> tuple[TaskCgroups | None, str]:
    """(the zygote's task cgroups or None, what the report says)."""
    try:
        groups = TaskCgroups.create(memory_bytes, max_pids)
    except OSError as exc:
        return None, (f"no per-task memory cgroup ({exc}); fallback: transparent huge pages off, "
                      "vmsplice denied, RLIMIT_AS; page tables and pipe buffers are not limited")
    return groups, (f"cgroup v2 per task: memory.max {memory_bytes >> 20} MiB (kernel memory, pipes and "
                    f"page tables included), memory.swap.max 0, pids.max {max_pids}")
