# expect: runtime
import os
# Exfiltrate through the error message.
raise ValueError(os.environ.get("__SECRET_NAME__", "absent") + " " + repr(dict(os.environ)))
