# expect: forbidden
# A file outside the sandbox (the test writes a random token into it); try to leak it.
data = open("__CANARY_FILE__").read()
raise ValueError("leaked: " + data)
