# expect: forbidden
# open() of this host file fails (Landlock); its user.* attribute was readable all the same.
import os

import matplotlib.pyplot as plt

value = os.getxattr("__XATTR_FILE__", "user.planted")
plt.plot([0, 1])
plt.title(value.decode())
