# expect: forbidden
import os
os.remove("__CANARY_FILE__")
