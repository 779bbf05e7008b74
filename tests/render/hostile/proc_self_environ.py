# expect: forbidden
raise ValueError(open("/proc/self/environ", "rb").read())
