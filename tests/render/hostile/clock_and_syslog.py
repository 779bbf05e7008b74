# expect: forbidden
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(4096)
if libc.klogctl(3, buf, 4096) < 0:  # SYSLOG_ACTION_READ_ALL
    error = ctypes.get_errno()
    try:
        time.clock_settime(time.CLOCK_REALTIME, 0.0)
    except OSError:
        raise OSError(error, "kernel log and clock refused")
