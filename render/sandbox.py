"""The jail every render task runs in, and the report of what a host enforces.

A task process, forked from a warm zygote before its request arrives, enters
the sandbox in this order: file descriptors closed and stdio sent to /dev/null;
fresh IPC, UTS and mount namespaces, its working directory a size- and
inode-capped tmpfs mounted in that mount namespace (so whatever it writes counts
against a cap, and vanishes with the task); a scrubbed environment; rlimits
(address space, open files, file size, processes, no core dumps; CPU seconds
are set by the task itself, before it runs any model code, once its
request's timeout is known); Landlock (read only
the Python installation, fonts and shared libraries; write only its working
directory, where it may not make devices, sockets or FIFOs; no TCP; no signals
or abstract sockets outside its domain); every privilege dropped
(render/privileges.py: no capability in any set, an unprivileged uid of its own); and a
seccomp allowlist (render/syscalls.py: no new processes, no exec, no ptrace, no namespace or
mount games, no sockets at all, no changing its own rlimits, nothing aimed at another process).
The zygote itself lives in a network namespace with no interfaces, and each
task is PID 1 of its own PID namespace, so killing it kills every process it made.
"""
from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import resource
import stat
import sys
import sysconfig

from render import landlock, privileges, syscalls

CLONE_NEWNET, CLONE_NEWPID = 0x40000000, 0x20000000
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUTS = 0x00020000, 0x08000000, 0x04000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 12, 1 << 14, 1 << 18
PR_SET_THP_DISABLE = 41
_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.restype = ctypes.c_int
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

PROTECTIONS = (
    "network_namespace",
    "pid_namespace",
    "private_namespaces",
    "landlock",
    "seccomp",
    "no_privileges",
    "rlimits",
    "clean_environment",
)
# Reported, used where the host allows, never required (most containers cannot give them).
OPTIONAL_PROTECTIONS = ("memory_cgroup",)
_SYSTEM_READ_PATHS = (
    "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib",
    "/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/fontconfig", "/etc/fonts",
    "/var/cache/fontconfig", "/etc/ld.so.cache", "/usr/share/zoneinfo", "/dev/urandom",
)
@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-task resource budget."""

    memory_mb: int = 2048  # address space on top of what the warm zygote maps
    max_open_files: int = 256
    max_file_mb: int = 64
    max_processes: int = 64
    disk_mb: int = 64  # the task dir's tmpfs: its files are memory, outside RLIMIT_AS
    max_files: int = 4096  # inodes in that tmpfs


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns({nstype:#x}): {os.strerror(err)}")


def python_read_paths() -> list[str]:
    """Where the interpreter and its packages live (not the user's project)."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix}
    paths.update(p for p in sysconfig.get_paths().values() if p)
    paths.update(p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p))
    return sorted(p for p in paths if os.path.exists(p))


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_rlimits(limits: Limits) -> None:
    address_space = _vm_size_bytes() + limits.memory_mb * 2**20
    for limit, value in (
        (resource.RLIMIT_AS, (address_space, address_space)),
        (resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files)),
        (resource.RLIMIT_FSIZE, (limits.max_file_mb * 2**20,) * 2),
        (resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(limit, value)


def limit_own_cpu(cpu_seconds: float) -> None:
    """Set this task's CPU-seconds limit once its request (and timeout) is known. Unprivileged,
    it can only lower the hard limit; seccomp lets it touch no other limit and no other process."""
    cpu = int(math.ceil(cpu_seconds)) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def mount_task_dir(workdir: str, limits: Limits, uid: int) -> None:
    """In a fresh mount namespace: the task dir becomes a capped tmpfs owned by the task's uid.

    Mount events must not propagate back to the host, hence the recursive MS_PRIVATE first.
    The tmpfs (and all the task wrote) is freed when the task, its namespace's last process, dies.
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    owner = (uid, uid) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    options = f"size={limits.disk_mb}m,nr_inodes={limits.max_files},mode=0700,uid={owner[0]},gid={owner[1]}"
    _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options)


def exposure_plan(paths) -> list[tuple[str, list[str]]]:
    """For read paths behind a folder an unprivileged uid cannot pass (a Python under /root):
    [(that folder, the read paths beneath it)], so a task's mount namespace can re-expose them."""
    plan: dict[str, list[str]] = {}
    for path in sorted(p for p in paths if os.path.exists(p)):
        parts = os.path.abspath(path).split(os.sep)[1:]
        for depth in range(1, len(parts)):
            folder = os.sep + os.path.join(*parts[:depth])
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                exposed = plan.setdefault(folder, [])
                if not any(path.startswith(e + os.sep) or path == e for e in exposed):
                    exposed.append(path)
                break
    return sorted(plan.items())


def expose(plan) -> None:
    """Cover each closed folder with an empty world-searchable tmpfs and bind the read paths
    beneath it back in place (only in this task's mount namespace)."""
    for folder, paths in plan:
        sources = [os.open(path, os.O_PATH | os.O_CLOEXEC) for path in paths]  # before they are covered
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=256")
        for path, source in zip(paths, sources):
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            if os.path.isdir(f"/proc/self/fd/{source}"):
                os.mkdir(path, 0o755)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            _mount(f"/proc/self/fd/{source}", path, None, MS_BIND | MS_REC, None)
            os.close(source)


def _mount(source, target, fstype, flags: int, data) -> None:
    def encode(value):
        return value.encode() if value is not None else None

    if _libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def enter(workdir: str, keep_fds: tuple[int, ...], limits: Limits, active: frozenset, *, readable: list[str],
          uid: int, seccomp=None, exposure=(), memory_cgroup: bool = False) -> None:
    """Confine the current (task) process. Irreversible; call right after fork.

    Needs nothing from the request, so a task can be jailed before its request arrives; it
    sets its CPU-seconds limit with `limit_own_cpu` once the timeout is known.
    `seccomp` is the filter from `syscalls.seccomp_filter()`, required when "seccomp" is active;
    `readable` is the Landlock read list (`read_paths()`), computed once by the caller, and
    `exposure` its `exposure_plan` (re-exposed in the task's mount namespace); `uid` is the
    unprivileged uid and gid the task takes (`privileges.task_id`) when it starts as root.
    Where no mount namespace can re-expose read paths an unprivileged uid cannot pass (a weak
    sandbox, `allow_weak_sandbox`), the task keeps uid 0 without any capability instead.
    `memory_cgroup`: the task already joined its own memory cgroup (render/cgroup.py); without
    one it turns transparent huge pages off for itself (huge pages multiply what it can pin).
    """
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    low = 3
    for fd in sorted(keep_fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    task_uid: int | None = uid
    if "private_namespaces" in active:
        unshare(CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS)
        mount_task_dir(workdir, limits, uid)
        if "no_privileges" in active:
            expose(exposure)
    elif exposure and os.geteuid() == 0:
        task_uid = None  # the Python installation is only reachable as its owner
    elif "no_privileges" in active and os.geteuid() == 0:
        os.chown(workdir, uid, uid)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(HOME=workdir, TMPDIR=workdir, PATH="/nonexistent", LANG="C.UTF-8")
    import tempfile

    tempfile.tempdir = workdir
    _set_rlimits(limits)
    if not memory_cgroup:
        _libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)
    if "landlock" in active:
        landlock.restrict(readable, [workdir, "/dev/null"])
    if "no_privileges" in active:
        privileges.drop(task_uid)
    if "seccomp" in active:
        seccomp.load()


def read_paths() -> list[str]:
    """Everything a task may read: the Python installation, fonts, shared libraries."""
    return python_read_paths() + list(_SYSTEM_READ_PATHS)


def answer_of_child(produce) -> bytes:
    """Run `produce` (-> bytes) in a forked child and return what it produced (b"" if the child died).

    Must run in a single-threaded process (it forks).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        view = memoryview(produce())
        while view:
            view = view[os.write(write_fd, view):]
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return answer


def _child_succeeds(action) -> str | None:
    """Run `action` in a forked child; None if it worked, else why not."""
    def produce() -> bytes:
        try:
            action()
            return b"ok"
        except BaseException as exc:
            return f"{type(exc).__name__}: {exc}".encode()[:300]

    answer = answer_of_child(produce).decode(errors="replace")
    return None if answer == "ok" else (answer or "probe child died")


def _pid_namespace():
    unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("child was not PID 1 of a new namespace")


def _landlock():
    abi = landlock.abi_version()
    if abi < 1:
        raise OSError("kernel has no Landlock")
    landlock.restrict(python_read_paths(), [])


def _private_namespaces():
    import tempfile

    unshare(CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS)
    # over /tmp, in this child's own mount namespace
    mount_task_dir(tempfile.gettempdir(), Limits(), privileges.task_id(os.getpid(), 0))


def _no_privileges():
    privileges.drop(privileges.task_id(os.getpid(), 0))
    held = {name: value for name, value in privileges.facts()["caps"].items() if value}
    if held:
        raise OSError(f"capabilities remain after dropping them: {held}")


def probe() -> dict[str, dict]:
    """Which protections work on this host: {name: {"active": bool, "detail": str}}.

    Must run in a single-threaded process (it forks).
    """
    abi = landlock.abi_version()
    checks = {
        "network_namespace": (lambda: unshare(CLONE_NEWNET), "no network interfaces, not even loopback"),
        "pid_namespace": (_pid_namespace, "each task is PID 1 of its namespace; its death kills all it forked"),
        "landlock": (_landlock, f"Landlock ABI {abi}: read-only Python/fonts/libs, write only the task dir"
                     + (", no TCP" if abi >= 4 else "") + (", signals scoped" if abi >= 6 else "")),
        "private_namespaces": (_private_namespaces, "fresh IPC, UTS and mount namespaces; the task dir a capped tmpfs"),
        "seccomp": (lambda: syscalls.seccomp_filter().load(), f"allowlist of {len(syscalls.ALLOWED_SYSCALLS)} calls "
                    "and 6 argument-filtered ones (render/syscalls.py), all else EPERM: no fork/exec/ptrace/namespaces/"
                    "sockets/mounts, no xattr, AIO, vmsplice, mount-listing, SysV IPC, memfd, watch or clock calls; "
                    "priority, I/O class and limits of the task itself only"),
        "no_privileges": (_no_privileges, "no capability in any set, unprivileged uid"),
    }
    report = {}
    for name, (action, detail) in checks.items():
        failure = _child_succeeds(action)
        report[name] = {"active": failure is None, "detail": detail if failure is None else failure}
    nproc = "threads per uid (one uid per task)" if os.geteuid() == 0 else "process count"
    report["rlimits"] = {"active": True, "detail": f"CPU seconds, address space, open files, file size, {nproc}"}
    report["clean_environment"] = {"active": True, "detail": "environment replaced; stdio to /dev/null; fds closed"}
    return report


WHAT_IS_LOST = {
    "network_namespace": "tasks share the host's network namespace (only seccomp's socket ban keeps them off it)",
    "pid_namespace": "tasks see the host's processes, and nothing kills what a task leaves behind",
    "private_namespaces": "no mount, IPC or UTS namespace: the task dir is a plain folder, not a capped tmpfs",
    "landlock": "no Landlock: a task may read every file its uid may read, and write where its uid may",
    "seccomp": "no seccomp: every system call is open to a task (fork, exec, sockets, ptrace, ...)",
    "no_privileges": "tasks keep uid 0 or a capability",
    "rlimits": "no resource limits",
    "clean_environment": "tasks see the pool's environment and descriptors",
}


def weakness(report: dict[str, dict]) -> str:
    """One message for a pool that starts without some protection (allow_weak_sandbox=True)."""
    missing = [name for name in PROTECTIONS if not report[name]["active"]]
    lines = [f"  - {name}: {WHAT_IS_LOST[name]} (probe: {report[name]['detail']})" for name in missing]
    return ("RenderPool runs a WEAK sandbox (allow_weak_sandbox=True); this host refuses "
            + ", ".join(missing) + ":\n" + "\n".join(lines))


def format_report(report: dict[str, dict]) -> str:
    lines = []
    for name in PROTECTIONS + OPTIONAL_PROTECTIONS:
        entry = report.get(name, {"active": False, "detail": "not probed"})
        lines.append(f"  [{'on ' if entry['active'] else 'OFF'}] {name}: {entry['detail']}")
    return "\n".join(lines)

