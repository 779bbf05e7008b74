# expect: timeout
import time
# Uses no CPU, so only the wall-clock deadline can end it.
while True:
    time.sleep(60)
