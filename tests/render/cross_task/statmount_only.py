# expect: forbidden
# statmount alone, on the mount ids a task could guess (they are small and dense).
import ctypes
import os
import struct

STATMOUNT, STATMOUNT_MNT_POINT = 457, 0x10
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buffer = ctypes.create_string_buffer(1 << 16)
request = ctypes.create_string_buffer(struct.pack("=IIQQ", 24, 0, 1, STATMOUNT_MNT_POINT))
if libc.syscall(STATMOUNT, request, buffer, ctypes.c_size_t(1 << 16), ctypes.c_uint(0)) < 0:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))
