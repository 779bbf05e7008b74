# expect: forbidden
# dnotify on a readable folder: learns when anything in it is read or changed.
import fcntl
import os

fd = os.open("/usr/lib", os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MODIFY | fcntl.DN_MULTISHOT)
