# expect: forbidden
# Nice 19 for its own process group and user: the next task, the spare and the zygote.
import os
import time

os.setpriority(os.PRIO_PROCESS, 0, 19)  # its own priority: allowed
time.sleep(1.0)  # the spare, forked beside this task, has jailed itself by now
os.setpriority(os.PRIO_PGRP, 0, 19)
os.setpriority(os.PRIO_USER, 0, 19)
