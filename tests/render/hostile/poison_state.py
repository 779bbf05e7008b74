# expect: image
# Try to poison the warm state that the next task (forked from the same zygote) sees.
import builtins
import random
import sys
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

matplotlib.rcParams.update({"lines.linewidth": 9, "axes.facecolor": "red", "font.size": 30,
                            "figure.dpi": 17, "figure.figsize": (2, 9), "axes.prop_cycle": matplotlib.cycler(color=["lime"])})
matplotlib.rcParamsDefault["axes.facecolor"] = "blue"
matplotlib.rcdefaults = lambda: None
np.random.seed(12345)
random.seed(12345)
np.random.rand = lambda *shape: np.zeros(shape)
plt.plot = lambda *a, **k: None
plt.scatter = lambda *a, **k: None
plt.close = lambda *a, **k: None
Figure.savefig = lambda *a, **k: None
builtins.print = None
builtins.open = None
sys.modules["numpy.random"] = None
sys.modules["json"] = None
plt.bar([0, 1], [1, 2])
