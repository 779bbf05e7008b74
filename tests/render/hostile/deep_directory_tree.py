# expect: image
import os
for _ in range(1500):
    os.mkdir("d")
    os.chdir("d")
for index in range(3000):
    open(f"f{index}", "w").close()
import matplotlib.pyplot as plt
plt.plot([0, 1])
