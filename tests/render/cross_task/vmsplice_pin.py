# expect: forbidden|memory
# Pins user pages into pipes with vmsplice: memory outside RLIMIT_AS, charged to nobody's limit.
import ctypes
import mmap
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.vmsplice.restype = ctypes.c_ssize_t


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


page = mmap.mmap(-1, 1 << 21)
page.write(b"x" * (1 << 21))
address = ctypes.addressof(ctypes.c_char.from_buffer(page))
pipes = []
for _ in range(64):
    read_fd, write_fd = os.pipe()
    pipes.append((read_fd, write_fd))
    vector = IoVec(address, 1 << 16)
    if libc.vmsplice(write_fd, ctypes.byref(vector), 1, 0) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
