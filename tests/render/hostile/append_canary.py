# expect: forbidden
with open("__CANARY_FILE__", "a") as canary:
    canary.write("tampered")
