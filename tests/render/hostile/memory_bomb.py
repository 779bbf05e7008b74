# expect: memory
import numpy as np
hoard = []
while True:
    hoard.append(np.empty(10**8))  # 800 MB of address space per step
