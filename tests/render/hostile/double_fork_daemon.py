# expect: forbidden
import os
import socket
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(2)  # act after the task has been reported
        open("__CANARY_DIR__/daemon___TOKEN__", "w").write("escaped")
        socket.create_connection(("127.0.0.1", __PORT__)).sendall(b"ESCAPED daemon")
    os._exit(0)
