# expect: forbidden
import ctypes
librt = ctypes.CDLL("librt.so.1", use_errno=True)
if librt.mq_open(b"/visual_erm_mailbox", 0o102, 0o666, None) < 0:  # O_CREAT | O_RDWR
    raise OSError(ctypes.get_errno(), "mq_open refused")
