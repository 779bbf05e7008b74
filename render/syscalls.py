"""The task's seccomp filter: an allowlist of the calls rendering needs, with argument filters.

Every call not on `ALLOWED_SYSCALLS` fails with EPERM (model code sees a PermissionError: a
`forbidden` render). The list is what the renderers and a task's own life (read the request,
lower its CPU limit, write the frame, exit) were measured to call, on the example gallery, the
benchmark charts and the test inputs (strace -f -c), plus what ordinary Python code does with
its own files, threads and clocks. Calls that are harmful only when aimed at another process
are allowed on the task itself only (`setpriority`, `ioprio_set`, `prlimit64`), `clone` only for
threads, `prctl` except undoing the parent-death signal, `fcntl` without `F_NOTIFY`.
`DENIED_SYSCALLS` names the calls attacks used or that would undo the jail; they are never on
the allowlist (tests check), so the list says in one place why they are refused.

Cost: the filter adds about 0.1 us to each system call, the same for this allowlist and the
denylist it replaced (render/README.md: measured), far below 1% of a render.

libseccomp knows calls by name only up to its own release; calls newer than it are named by
number, which since 424 is the same on x86_64 and aarch64 (asm-generic numbering).
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
ALLOWED_SYSCALLS = (
    # A process's and its threads' own life, signals to itself (Landlock scopes the rest), ids.
    "exit", "exit_group", "restart_syscall", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "sigaltstack", "tgkill", "kill", "getpid", "gettid", "getppid", "getpgrp", "getpgid",
    "getsid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "capget",
    "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "arch_prctl", "futex", "sched_yield",
    "sched_getaffinity", "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "getpriority", "ioprio_get", "getrusage", "times", "sysinfo", "uname", "getcpu",
    "getrandom", "membarrier", "wait4", "waitid",
    # Memory (within RLIMIT_AS).
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mbind", "get_mempolicy",
    "set_mempolicy",
    # Clocks and timers.
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep", "getitimer",
    "setitimer", "alarm", "pause", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    # Files (Landlock decides which), descriptors, pipes and polling.
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "open", "openat", "openat2", "creat", "close", "close_range", "dup", "dup2", "dup3", "lseek", "fstat",
    "stat", "lstat", "newfstatat", "statx", "fstatfs", "statfs", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat",
    "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
    "symlinkat", "truncate", "ftruncate", "fsync", "fdatasync", "fadvise64", "flock", "umask", "ioctl",
    "sendfile", "copy_file_range", "pipe", "pipe2", "poll", "ppoll", "select", "pselect6", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "eventfd", "eventfd2",
)
# Allowed in a safe form only (argument filters in `seccomp_filter`).
GUARDED_SYSCALLS = ("clone", "prctl", "prlimit64", "setpriority", "ioprio_set", "fcntl")
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


def overlap() -> list[str]:
    """Calls both allowed and named as denied (should be none)."""
    return sorted(set(ALLOWED_SYSCALLS + GUARDED_SYSCALLS) & set(DENIED_SYSCALLS))


def seccomp_filter():
    """The task's seccomp filter; build it before forking tasks (it loads libseccomp)."""
    import pyseccomp as sc

    def rule(action, name, *args):
        number = syscall_number(name)
        if number is not None:
            allowed.add_rule(action, number, *args)

    allowed = sc.SyscallFilter(defaction=sc.ERRNO(errno.EPERM))
    for name in ALLOWED_SYSCALLS:
        rule(sc.ALLOW, name)
    rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, CLONE_THREAD))  # threads, not processes
    rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone for threads
    # No sockets at all, not even AF_UNIX: connect()/sendto() to a named Unix socket
    # (docker.sock, /dev/log, ...) would cross the network namespace and Landlock.
    rule(sc.ERRNO(errno.EACCES), "socket")
    rule(sc.ERRNO(errno.EACCES), "socketpair")
    # The zygote sets PR_SET_PDEATHSIG so the task dies with it; it may not undo that.
    rule(sc.ALLOW, "prctl", sc.Arg(0, sc.NE, PR_SET_PDEATHSIG))
    # prlimit64 may read limits (glibc's getrlimit uses it) and set this process's own CPU
    # limit (below the hard limit: no CAP_SYS_RESOURCE), nothing else.
    rule(sc.ALLOW, "prlimit64", sc.Arg(2, sc.EQ, 0))
    rule(sc.ALLOW, "prlimit64", sc.Arg(0, sc.EQ, 0), sc.Arg(1, sc.EQ, resource.RLIMIT_CPU))
    # Priority and I/O class of this process only: not of a process group or a user (the
    # next task, the spare waiting beside it, the zygote), nor of another process by id.
    rule(sc.ALLOW, "setpriority", sc.Arg(0, sc.EQ, PRIO_PROCESS), sc.Arg(1, sc.EQ, 0))
    rule(sc.ALLOW, "ioprio_set", sc.Arg(0, sc.EQ, IOPRIO_WHO_PROCESS), sc.Arg(1, sc.EQ, 0))
    # Directory change notification (dnotify) is a watch on any readable folder.
    rule(sc.ALLOW, "fcntl", sc.Arg(1, sc.NE, F_NOTIFY))
    return allowed
