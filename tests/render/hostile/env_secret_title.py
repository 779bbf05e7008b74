# expect: image
import os
import matplotlib.pyplot as plt
secret = os.environ.get("__SECRET_NAME__")
plt.title(f"secret={secret}")
plt.plot([0, 1])
if secret is not None:
    raise RuntimeError("LEAKED " + secret)  # would surface in the message
