# expect: forbidden
import os, stat
os.mknod("disk", stat.S_IFBLK | 0o600, os.makedev(8, 0))
