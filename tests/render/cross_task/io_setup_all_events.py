# expect: forbidden
# Takes the host's whole AIO event pool (fs.aio-max-nr): io_setup of any other process fails meanwhile.
import ctypes
import os
import platform

IO_SETUP = {"x86_64": 206, "aarch64": 0}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
contexts = []
for _ in range(64):
    context = ctypes.c_ulong(0)
    if libc.syscall(IO_SETUP, 4096, ctypes.byref(context)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    contexts.append(context)
