# expect: forbidden
with open("__CANARY_DIR__/planted___TOKEN__.txt", "w") as planted:
    planted.write("escaped")
