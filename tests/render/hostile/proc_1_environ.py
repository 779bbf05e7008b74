# expect: forbidden
raise ValueError(open("/proc/1/environ", "rb").read())
