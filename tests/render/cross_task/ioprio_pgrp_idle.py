# expect: forbidden
# The idle I/O class for its own process group and user (and itself, which is allowed).
import ctypes
import os
import platform
import time

IOPRIO_SET = {"x86_64": 251, "aarch64": 30}[platform.machine()]
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IDLE = 3 << 13
libc = ctypes.CDLL(None, use_errno=True)
time.sleep(1.0)  # the spare, forked beside this task, has jailed itself by now
for who in (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER):
    if libc.syscall(IOPRIO_SET, who, 0, IDLE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
