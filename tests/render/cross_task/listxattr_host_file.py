# expect: forbidden
import os

import matplotlib.pyplot as plt

names = os.listxattr("__XATTR_FILE__")
plt.plot([0, 1])
plt.title(" ".join(names))
