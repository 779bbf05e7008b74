# expect: forbidden
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.inotify_init1(0) < 0:
    raise OSError(ctypes.get_errno(), "inotify refused")
