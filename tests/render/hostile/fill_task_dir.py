# expect: forbidden|runtime
with open("big", "wb") as handle:
    for _ in range(200):
        handle.write(b"\0" * (1 << 20))
