# expect: runtime
import sys
import matplotlib.pyplot as plt
plt.plot([1, 2])
sys.exit(3)
