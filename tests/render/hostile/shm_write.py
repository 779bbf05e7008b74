# expect: forbidden
with open("/dev/shm/visual_erm_escape___TOKEN__", "w") as shm:
    shm.write("escaped")
