"""Runs a Python command in a process tree that may not create namespaces, like a container without
user namespaces (Colab): a seccomp filter makes unshare/clone with any CLONE_NEW* flag fail with EPERM
(clone3, whose flags seccomp cannot read, fails with ENOSYS so libc falls back to clone).

    python tests/launch/no_namespaces.py -m some.module ARGS...
"""
import ctypes
import errno
import os
import sys

import pyseccomp as sc

NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
CLONE_NEWUSER = 0x10000000


def refuse_namespaces() -> None:
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for call in ("unshare", "clone"):
        for flag in NAMESPACE_FLAGS:
            rules.add_rule(sc.ERRNO(errno.EPERM), call, sc.Arg(0, sc.MASKED_EQ, flag, flag))
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    rules.load()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != -1 or ctypes.get_errno() != errno.EPERM:
        raise RuntimeError("the filter did not refuse a user namespace")


if __name__ == "__main__":
    refuse_namespaces()
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
