# expect: forbidden
import os
for attempt in (lambda: os.chown("__CANARY_FILE__", 65534, 65534), lambda: os.utime("__CANARY_FILE__", (0, 0)),
                lambda: os.setxattr("__CANARY_FILE__", "user.mailbox", b"hello")):
    try:
        attempt()
    except OSError as exc:
        last = exc
raise last
