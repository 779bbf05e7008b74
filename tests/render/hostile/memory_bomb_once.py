# expect: memory
blob = bytearray(50 * 2**30)
