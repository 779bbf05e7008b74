"""The jail every render task runs in, and the report of what a host enforces.

A task process, forked from a warm zygote before its request arrives, enters
the sandbox in this order: file descriptors closed and stdio sent to /dev/null;
a fresh working directory and a scrubbed environment; rlimits (address space,
open files, file size, processes, no core dumps; CPU seconds are set by the
zygote once the request's timeout is known); Landlock (read only the Python
installation, fonts and shared libraries; write only its working directory; no
TCP; no signals or abstract sockets outside its domain); a seccomp filter (no
new processes, no exec, no ptrace, no namespace or mount games, no sockets at
all: a named AF_UNIX socket on the host is reachable from any network namespace
and Landlock does not guard connect()/sendto() to it; no changing its own
rlimits; and the task may not clear the parent-death signal that ties it to
its zygote). The zygote itself
lives in a network namespace with no interfaces, and each task is PID 1 of its
own PID namespace, so killing it kills every process it made.
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import math
import os
import resource
import sys
import sysconfig

from render import landlock

CLONE_NEWNET, CLONE_NEWPID, CLONE_THREAD = 0x40000000, 0x20000000, 0x00010000
_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.restype = ctypes.c_int

PROTECTIONS = (
    "network_namespace",
    "pid_namespace",
    "landlock",
    "seccomp",
    "rlimits",
    "clean_environment",
)
_SYSTEM_READ_PATHS = (
    "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib",
    "/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/fontconfig", "/etc/fonts",
    "/var/cache/fontconfig", "/etc/ld.so.cache", "/usr/share/zoneinfo", "/dev/urandom",
)
_DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open",
    "kexec_load", "init_module", "finit_module", "delete_module", "keyctl", "add_key",
    "request_key", "userfaultfd", "io_uring_setup", "personality", "swapon", "swapoff", "reboot",
    "setrlimit",  # a root task with CAP_SYS_RESOURCE could raise its own limits (prlimit64: below)
)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-task resource budget."""

    memory_mb: int = 2048  # address space on top of what the warm zygote maps
    max_open_files: int = 256
    max_file_mb: int = 64
    max_processes: int = 64


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


def limit_cpu(pid: int, cpu_seconds: float) -> None:
    """Set a task's CPU-seconds limit from outside (the task itself may not call setrlimit)."""
    cpu = int(math.ceil(cpu_seconds)) + 1
    resource.prlimit(pid, resource.RLIMIT_CPU, (cpu, cpu + 1))


def seccomp_filter():
    """The task's seccomp filter; build it before forking tasks (it loads libseccomp)."""
    import pyseccomp as sc

    denied = sc.SyscallFilter(defaction=sc.ALLOW)
    denied.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    denied.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone for threads
    # No sockets at all, not even AF_UNIX: connect()/sendto() to a named Unix socket
    # (docker.sock, /dev/log, ...) crosses the network namespace and Landlock.
    denied.add_rule(sc.ERRNO(errno.EACCES), "socket")
    denied.add_rule(sc.ERRNO(errno.EACCES), "socketpair")
    # The zygote sets PR_SET_PDEATHSIG (1) so the task dies with it; it may not undo that.
    denied.add_rule(sc.ERRNO(errno.EPERM), "prctl", sc.Arg(0, sc.EQ, 1))
    # prlimit64 may read limits (glibc's getrlimit uses it) but not set them.
    denied.add_rule(sc.ERRNO(errno.EPERM), "prlimit64", sc.Arg(2, sc.NE, 0))
    for name in _DENIED_SYSCALLS:
        try:
            denied.add_rule(sc.ERRNO(errno.EPERM), name)
        except (ValueError, RuntimeError, OSError):
            pass  # the syscall does not exist on this architecture
    return denied


def enter(workdir: str, keep_fds: tuple[int, ...], limits: Limits, active: frozenset, *, readable: list[str],
          seccomp=None) -> None:
    """Confine the current (task) process. Irreversible; call right after fork.

    Needs nothing from the request, so a task can be jailed before its request arrives; its
    CPU-seconds limit is set from outside with `limit_cpu` once the timeout is known.
    `seccomp` is the filter from `seccomp_filter()`, required when "seccomp" is active;
    `readable` is the Landlock read list (`read_paths()`), computed once by the caller.
    """
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    low = 3
    for fd in sorted(keep_fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(HOME=workdir, TMPDIR=workdir, PATH="/nonexistent", LANG="C.UTF-8")
    import tempfile

    tempfile.tempdir = workdir
    _set_rlimits(limits)
    if "landlock" in active:
        landlock.restrict(readable, [workdir, "/dev/null"])
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
        except BaseException as exc:  # noqa: BLE001
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
        "seccomp": (lambda: seccomp_filter().load(), "no fork/exec/ptrace/namespaces; no sockets; no rlimit changes"),
    }
    report = {}
    for name, (action, detail) in checks.items():
        failure = _child_succeeds(action)
        report[name] = {"active": failure is None, "detail": detail if failure is None else failure}
    nproc = "process count not enforced for root (seccomp blocks new processes instead)" if os.geteuid() == 0 else "process count"
    report["rlimits"] = {"active": True, "detail": f"CPU seconds, address space, open files, file size, {nproc}"}
    report["clean_environment"] = {"active": True, "detail": "environment replaced; stdio to /dev/null; fds closed"}
    return report


def format_report(report: dict[str, dict]) -> str:
    lines = []
    for name in PROTECTIONS:
        entry = report.get(name, {"active": False, "detail": "not probed"})
        lines.append(f"  [{'on ' if entry['active'] else 'OFF'}] {name}: {entry['detail']}")
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    print(json.dumps(probe()))
