# expect: image
import os
import socket
import threading
import time
import matplotlib.pyplot as plt


def later():
    time.sleep(1.5)  # the task has handed over its figure by now
    for attempt in (lambda: open("__CANARY_DIR__/thread___TOKEN__", "w").write("escaped"),
                    lambda: socket.create_connection(("127.0.0.1", __PORT__)).sendall(b"ESCAPED thread"),
                    lambda: os.kill(os.getppid(), 9)):
        try:
            attempt()
        except Exception:
            pass


threading.Thread(target=later, daemon=False).start()
plt.plot([1, 2, 3], [3, 1, 2])
