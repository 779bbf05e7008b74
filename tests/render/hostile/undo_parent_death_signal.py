# expect: forbidden
import ctypes
PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "prctl refused")
