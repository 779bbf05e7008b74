# expect: forbidden
import matplotlib.pyplot as plt
secret = open("/etc/passwd").read()
plt.title(secret[:60])
plt.show()
