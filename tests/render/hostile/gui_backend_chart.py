# expect: image
import os
os.environ["MPLBACKEND"] = "TkAgg"
import matplotlib
matplotlib.use("TkAgg")
import matplotlib.pyplot as plt
plt.switch_backend("TkAgg")
plt.bar(["a", "b"], [3, 1])
plt.show()
