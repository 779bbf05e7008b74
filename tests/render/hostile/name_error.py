# expect: runtime
import matplotlib.pyplot as plt
values = [1, 2, 3]
plt.plot(valeus)
