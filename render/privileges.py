"""Give up every privilege a task process holds, and read back what it still holds.

A task forked from a root zygote is root with the full capability set: Landlock and
seccomp do not stop what root may do without opening a file (chmod/chown on host files,
mknod, sethostname, ...). After its jail is set up, the task therefore drops, in this
order (each step needs a capability the next one removes): the capability bounding set,
locked securebits (no root magic, no keeping capabilities across setuid, no ambient
raise), the inheritable and ambient sets, supplementary groups, then setresgid/setresuid
to an unused unprivileged id (`task_id`), which empties the permitted and effective sets.

`facts()` reads the result with syscalls only (no /proc files: Landlock hides them), so
it works from inside a jailed task; the pool refuses to start when it shows a capability.
"""
from __future__ import annotations

import ctypes
import os

TASK_ID_BASE = 1 << 30  # task uids/gids (task_id): ids no account uses
TASK_IDS_PER_ZYGOTE = 512
PR_CAPBSET_READ, PR_CAPBSET_DROP = 23, 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_CLEAR_ALL = 47, 1, 4
# linux/securebits.h: NOROOT(+locked), setuid fix-up kept and locked, KEEP_CAPS off and
# locked, no ambient raise (+locked).
SECUREBITS = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7)
_CAP_VERSION_3 = 0x20080522
NAMESPACES = ("net", "ipc", "uts", "pid", "mnt", "user")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.restype = ctypes.c_int
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return 63


LAST_CAP = _last_cap()  # read at import, in the zygote: a jailed task cannot read /proc


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    result = _libc.prctl(option, arg2, arg3, 0, 0)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")
    return result


def _capget() -> tuple[int, int, int]:
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capget: {os.strerror(err)}")
    def join(name):
        return getattr(data[0], name) | getattr(data[1], name) << 32

    return join("effective"), join("permitted"), join("inheritable")


def _capset_empty() -> None:
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def task_id(zygote_pid: int, serial: int) -> int:
    """The uid and gid of a zygote's `serial`-th task: one per task, so no priority, I/O-class,
    signal or per-uid limit call of a task reaches the next task, the spare or the zygote, and no
    task shares an id with anything else on the host. A zygote reaps each task long before its
    serial comes round again (pids are below 2**22, so the ids stay below 2**32 - 1)."""
    return TASK_ID_BASE + zygote_pid * TASK_IDS_PER_ZYGOTE + serial % TASK_IDS_PER_ZYGOTE


def drop(uid: int | None) -> None:
    """Leave this process with no capability in any set, as uid and gid `uid` when it was root
    (None: keep uid 0, for a weak sandbox whose Python only root can reach).

    Irreversible. Run after every step that needs privilege (namespaces, mounts, Landlock)
    and before seccomp (which refuses the calls used here). A non-root process keeps its
    uid; it cannot empty its bounding set, which no_new_privs and the exec ban make moot.
    """
    if os.geteuid() == 0:
        for cap in range(LAST_CAP + 1):
            _prctl(PR_CAPBSET_DROP, cap)
        _prctl(PR_SET_SECUREBITS, SECUREBITS)
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        os.setgroups([])
        if uid is not None:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # root -> non-root empties permitted and effective
    _capset_empty()  # the inheritable set survives setresuid; without it, all sets are emptied here


def facts() -> dict:
    """uid/gid, every capability set, securebits, no_new_privs and namespace ids of this process."""
    effective, permitted, inheritable = _capget()
    bounding = sum(1 << cap for cap in range(LAST_CAP + 1) if _prctl(PR_CAPBSET_READ, cap) == 1)
    ambient = sum(1 << cap for cap in range(LAST_CAP + 1) if _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap) == 1)
    namespaces = {}
    for name in NAMESPACES:
        try:
            namespaces[name] = os.stat(f"/proc/self/ns/{name}").st_ino
        except OSError:
            namespaces[name] = 0
    return {
        "uid": list(os.getresuid()), "gid": list(os.getresgid()), "groups": os.getgroups(),
        "caps": {"effective": effective, "permitted": permitted, "inheritable": inheritable,
                 "bounding": bounding, "ambient": ambient},
        "securebits": _prctl(PR_GET_SECUREBITS), "no_new_privs": _prctl(PR_GET_NO_NEW_PRIVS),
        "session_leader": os.getsid(0) == os.getpid(),
        "namespaces": namespaces,
    }


def host_namespaces() -> dict:
    """The namespace ids of this (host-side) process, to compare a task's against."""
    return {name: os.stat(f"/proc/self/ns/{name}").st_ino
            for name in NAMESPACES if os.path.exists(f"/proc/self/ns/{name}")}
