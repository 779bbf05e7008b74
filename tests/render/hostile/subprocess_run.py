# expect: forbidden
import subprocess
subprocess.run(["/bin/sh", "-c", "touch __CANARY_DIR__/planted___TOKEN__"], check=True)
