# expect: too_large
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(1000, 1000))
plt.plot([0, 1], [0, 1])
plt.show()
