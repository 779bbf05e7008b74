# expect: forbidden
import ctypes
libc = ctypes.CDLL(None, use_errno=True)


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


buffer = ctypes.create_string_buffer(64)
local, remote = IOVec(ctypes.addressof(buffer), 64), IOVec(0x400000, 64)
if libc.process_vm_readv(__TEST_PID__, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) < 0:
    raise OSError(ctypes.get_errno(), "process_vm_readv refused")
raise ValueError(buffer.raw)
