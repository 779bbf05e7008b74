# expect: invalid_output
# size: 64x64
# Writes its own result frame: a 4096x4096 image for a 64x64 request (48 MiB in the trainer).
import json
import os
import stat
import struct

for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            head = json.dumps({"ok": True, "height": 4096, "width": 4096}).encode()
            os.write(fd, struct.pack(">II", len(head), 4096 * 4096 * 3) + head)
            chunk = bytes(1 << 20)
            for _ in range(48):
                os.write(fd, chunk)
    except OSError:
        pass
os._exit(0)
