# expect: forbidden
import ctypes
import os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_TRACEME, PTRACE_ATTACH = 0, 16
for request, pid in ((PTRACE_ATTACH, 1), (PTRACE_ATTACH, __TEST_PID__), (PTRACE_TRACEME, 0)):
    if libc.ptrace(request, pid, None, None) == 0:
        raise RuntimeError(f"ptrace({request}, {pid}) worked")
raise OSError(ctypes.get_errno(), "ptrace refused")
