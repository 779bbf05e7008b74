# expect: image|forbidden
import os
import matplotlib.pyplot as plt
status = os.system("touch __CANARY_DIR__/planted___TOKEN__")
plt.title(f"os.system returned {status}")
plt.plot([0, 1], [0, 1])
