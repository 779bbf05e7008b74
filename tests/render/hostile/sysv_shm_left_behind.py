# expect: forbidden
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(0x5EC7E7, 200 << 20, 0o1666)  # IPC_CREAT | 0666
if shmid < 0:
    raise OSError(ctypes.get_errno(), "shmget refused")
