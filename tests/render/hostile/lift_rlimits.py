# expect: runtime|forbidden
# A task may not touch its own rlimits (seccomp): even lowering one is refused, so raising is too.
import resource
import matplotlib.pyplot as plt
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
resource.prlimit(0, resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
plt.plot([1, 2])
