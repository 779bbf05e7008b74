# expect: forbidden|runtime
import multiprocessing
import time


def later():
    time.sleep(2)
    open("__CANARY_DIR__/mp___TOKEN__", "w").write("escaped")


multiprocessing.Process(target=later, daemon=False).start()
