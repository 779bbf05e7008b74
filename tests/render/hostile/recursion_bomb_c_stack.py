# expect: runtime|timeout|memory
import sys
sys.setrecursionlimit(10**8)
nested = []
for _ in range(300_000):
    nested = [nested]
repr(nested)  # recursion in C: overflows the C stack
