# expect: forbidden
# Every mount of its namespace (a copy of the host's) through system calls Landlock does not see.
import ctypes
import os
import struct

import matplotlib.pyplot as plt

LISTMOUNT, STATMOUNT, LSMT_ROOT, STATMOUNT_MNT_POINT = 458, 457, 2**64 - 1, 0x10
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def check(result):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


ids = (ctypes.c_uint64 * 256)()
request = ctypes.create_string_buffer(struct.pack("=IIQQ", 24, 0, LSMT_ROOT, 0))
count = check(libc.syscall(LISTMOUNT, request, ids, ctypes.c_size_t(256), ctypes.c_uint(0)))
seen = []
for mount_id in ids[:count]:
    buffer = ctypes.create_string_buffer(1 << 16)
    request = ctypes.create_string_buffer(struct.pack("=IIQQ", 24, 0, mount_id, STATMOUNT_MNT_POINT))
    check(libc.syscall(STATMOUNT, request, buffer, ctypes.c_size_t(1 << 16), ctypes.c_uint(0)))
    seen.append("".join(chr(b) if 32 < b < 127 else " " for b in buffer.raw).split()[-1:])
plt.plot([0, 1])
plt.title(repr(seen))
