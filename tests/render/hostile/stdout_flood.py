# expect: image
import sys
import matplotlib.pyplot as plt
line = "A" * 4096
for _ in range(20000):  # 80 MB to stdout and 80 MB to stderr
    print(line)
    sys.stderr.write(line + "\n")
plt.bar([0, 1], [1, 2])
