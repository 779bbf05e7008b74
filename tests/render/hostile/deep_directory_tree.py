# expect: image|timeout
# A tree too deep for a recursive rmtree, and many files: clean-up must neither fail nor
# bill the next task (on a loaded machine the script itself may run out of time: fine).
import os
for _ in range(1500):
    os.mkdir("d")
    os.chdir("d")
for index in range(300):
    open(f"f{index}", "w").close()
import matplotlib.pyplot as plt
plt.plot([0, 1])
