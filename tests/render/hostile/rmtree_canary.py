# expect: forbidden
import shutil
shutil.rmtree("__CANARY_DIR__")
