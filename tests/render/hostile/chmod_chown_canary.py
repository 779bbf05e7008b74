# expect: forbidden
import os
os.chmod("__CANARY_FILE__", 0o4777)
