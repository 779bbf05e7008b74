# expect: image
# Another snippet of the storm holds the marker; look for it in every object and frame we can reach.
import gc, sys
marker = "PRIOR" + "_REQUEST_" + "__TOKEN__"
for obj in gc.get_objects():
    if obj is globals():
        continue
    if isinstance(obj, (str, bytes, dict)) and marker in str(obj) and obj is not marker:
        raise RuntimeError("found another request: " + str(obj)[:100])
frame = sys._getframe()
while frame is not None:
    if frame.f_locals is globals():
        frame = frame.f_back
        continue
    for value in list(frame.f_locals.values()):
        if value is globals() or value is marker:
            continue
        if marker in repr(value)[:100000]:
            raise RuntimeError("found another request in a frame")
    frame = frame.f_back
import matplotlib.pyplot as plt
plt.plot([0, 1])
