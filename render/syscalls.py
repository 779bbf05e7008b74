"""The task's seccomp filter: a denylist with argument filters (why not an allowlist: render/README.md).

Everything below is refused with EPERM (sockets with EACCES); a call not listed is allowed,
and the other layers (namespaces, Landlock, no privilege, rlimits, cgroup) still apply to it.
Calls that are only harmful when aimed at another process are allowed on the task itself only
(`setpriority`, `ioprio_set`, `prlimit64`), and `fcntl` without `F_NOTIFY`.

libseccomp knows calls by name only up to its own release; calls newer than it (the mount
listing calls, the *xattrat family, file_getattr) are added by number, which since 424 is the
same on x86_64 and aarch64 (asm-generic numbering), so a new kernel cannot open a hole an old
libseccomp does not know to close.
"""
from __future__ import annotations

import errno
import platform
import resource

CLONE_THREAD = 0x00010000
PR_SET_PDEATHSIG = 1
PRIO_PROCESS, IOPRIO_WHO_PROCESS = 0, 1
F_NOTIFY = 1026
DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open",
    "kexec_load", "init_module", "finit_module", "delete_module", "keyctl", "add_key",
    "request_key", "userfaultfd", "io_uring_setup", "personality", "swapon", "swapoff", "reboot",
    "setrlimit",  # the legacy call; limits go through prlimit64 (below)
    "kexec_file_load", "io_uring_enter", "io_uring_register", "acct", "quotactl", "quotactl_fd", "iopl",
    "ioperm", "pidfd_getfd", "kcmp", "process_madvise", "vhangup", "lookup_dcookie",
    # Host-wide kernel objects: the AIO event pool (io_setup took all 65,536 events of the host).
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    # Pages pinned outside every rlimit: vmsplice gifts user pages to a pipe (1 GiB under a 128 MiB limit).
    "vmsplice",
    # File metadata: even on files it may write, a task has no use for these; reading xattrs
    # works on files `open` refuses (Landlock checks opens, not getxattr).
    "mknod", "mknodat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat",
    "removexattrat", "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "listxattr", "llistxattr",
    "flistxattr", "listxattrat", "file_getattr", "file_setattr", "utime", "utimes", "utimensat", "futimesat",
    # Memory outside RLIMIT_AS and objects that outlive a process: SysV IPC, POSIX mqueues, memfds.
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr", "memfd_create", "memfd_secret",
    # Watching or changing the host: file watches, kernel log, names, clocks, RT scheduling.
    "fanotify_init", "fanotify_mark", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "syslog", "sethostname", "setdomainname", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "sched_setscheduler", "sched_setparam", "sched_setattr",
    # The new mount API, mount listing (system calls: Landlock does not see them, and they read
    # every host mount while /proc/self/mountinfo is refused) and file handles.
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "open_tree_attr",
    "mount_setattr", "listmount", "statmount", "name_to_handle_at", "open_by_handle_at",
)
# asm-generic numbers (x86_64 == aarch64 from 424 on) of calls an older libseccomp cannot name.
_GENERIC_NUMBERS = {
    "statmount": 457, "listmount": 458, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465,
    "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469,
}
_GENERIC_ARCHES = ("x86_64", "aarch64")


def syscall_number(name: str) -> int | None:
    """The native number of a system call, or None where this architecture has none."""
    import pyseccomp as sc

    number = sc.resolve_syscall(sc.Arch.NATIVE, name)
    if number >= 0:
        return number
    return _GENERIC_NUMBERS.get(name) if platform.machine() in _GENERIC_ARCHES else None


def unresolved() -> list[str]:
    """Denied calls this host's filter cannot name (should be empty on x86_64 and aarch64)."""
    return [name for name in DENIED_SYSCALLS if syscall_number(name) is None]


def seccomp_filter():
    """The task's seccomp filter; build it before forking tasks (it loads libseccomp)."""
    import pyseccomp as sc

    def deny(name, *args, code=errno.EPERM):
        number = syscall_number(name)
        if number is not None:
            denied.add_rule(sc.ERRNO(code), number, *args)

    denied = sc.SyscallFilter(defaction=sc.ALLOW)
    deny("clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    deny("clone3", code=errno.ENOSYS)  # glibc falls back to clone for threads
    # No sockets at all, not even AF_UNIX: connect()/sendto() to a named Unix socket
    # (docker.sock, /dev/log, ...) crosses the network namespace and Landlock.
    deny("socket", code=errno.EACCES)
    deny("socketpair", code=errno.EACCES)
    # The zygote sets PR_SET_PDEATHSIG so the task dies with it; it may not undo that.
    deny("prctl", sc.Arg(0, sc.EQ, PR_SET_PDEATHSIG))
    # prlimit64 may read limits (glibc's getrlimit uses it) and set this process's own CPU
    # limit (below the hard limit: no CAP_SYS_RESOURCE), nothing else.
    deny("prlimit64", sc.Arg(2, sc.NE, 0), sc.Arg(0, sc.NE, 0))
    deny("prlimit64", sc.Arg(2, sc.NE, 0), sc.Arg(1, sc.NE, resource.RLIMIT_CPU))
    # Priority and I/O class of this process only: not of a process group or a user (the
    # next task, the spare waiting beside it, the zygote), nor of another process by id.
    deny("setpriority", sc.Arg(0, sc.NE, PRIO_PROCESS))
    deny("setpriority", sc.Arg(1, sc.NE, 0))
    deny("ioprio_set", sc.Arg(0, sc.NE, IOPRIO_WHO_PROCESS))
    deny("ioprio_set", sc.Arg(1, sc.NE, 0))
    # Directory change notification: a watch on any readable folder (dnotify).
    deny("fcntl", sc.Arg(1, sc.EQ, F_NOTIFY))
    for name in DENIED_SYSCALLS:
        deny(name)
    return denied
