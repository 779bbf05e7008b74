# expect: forbidden|runtime
import os
import signal
# The test process, the pool's zygotes and PID 1 as the host numbers them.
for pid in (__HOST_PIDS__):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    fd = os.pidfd_open(pid)
    signal.pidfd_send_signal(fd, signal.SIGKILL)
