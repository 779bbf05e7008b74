# expect: no_figure|forbidden|runtime
import os
import signal
os.kill(-1, signal.SIGKILL)  # every process we may signal
