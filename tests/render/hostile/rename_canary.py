# expect: forbidden
import os
os.rename("__CANARY_FILE__", "stolen.txt")
