# expect: forbidden|memory
import os
fds = []
for _ in range(6):
    fd = os.memfd_create("hoard")
    os.ftruncate(fd, 256 << 20)
    os.write(fd, b"x" * (1 << 20))
    fds.append(fd)
