# expect: image
secret = "PRIOR_REQUEST___TOKEN__"
import matplotlib.pyplot as plt
plt.plot([0, 1])
