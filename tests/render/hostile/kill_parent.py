# expect: no_figure|forbidden|runtime
import os
import signal
os.kill(os.getppid(), signal.SIGKILL)
os.killpg(os.getpgid(0), signal.SIGKILL)
