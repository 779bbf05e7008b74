# expect: runtime|forbidden
import ctypes
# The x32 ABI (bit 30 set) is a classic way round a filter written for x86_64.
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(0x40000000 | 57) == 0:  # x32 fork
    open("__CANARY_DIR__/x32___TOKEN__", "w").write("escaped")
raise OSError(ctypes.get_errno(), "x32 fork refused")
