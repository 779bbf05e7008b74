# expect: forbidden
import os
# A symlink inside the writable task dir must not lead outside it.
os.symlink("/tmp/visual_erm_escape___TOKEN__", "innocent.txt")
os.symlink("__CANARY_FILE__", "canary_link.txt")
try:
    open("canary_link.txt", "w").write("tampered")
finally:
    open("innocent.txt", "w").write("escaped")
