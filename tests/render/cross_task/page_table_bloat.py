# expect: memory|image
# One touched page per GiB of address space: each costs a page-table page and a PMD page,
# kernel memory outside RLIMIT_AS (about 2x the address space it uses). Only a memory cgroup
# counts it (then: memory); without one the task holds it for its life, then renders.
import ctypes

import matplotlib.pyplot as plt

PROT_RW, MAP_PRIVATE_ANONYMOUS, MAP_FIXED_NOREPLACE = 3, 0x22, 0x100000
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
held = 0
for index in range(16384):
    wanted = (1 << 40) + (index << 30)
    address = libc.mmap(wanted, 4096, PROT_RW, MAP_PRIVATE_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
    if address != wanted:
        break
    ctypes.c_char.from_address(address).value = b"x"
    held += 1
plt.plot([0, 1])
plt.title(f"{held} pages, {held * 8 // 1024} MiB of page tables")
