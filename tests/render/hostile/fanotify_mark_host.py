# expect: forbidden
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.fanotify_init(0x4, 0) < 0:  # FAN_CLASS_CONTENT: permission marks
    raise OSError(ctypes.get_errno(), "fanotify refused")
