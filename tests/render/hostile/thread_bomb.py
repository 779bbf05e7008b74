# expect: runtime|memory
import threading
import time
while True:
    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
