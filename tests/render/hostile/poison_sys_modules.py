# expect: image|no_figure|runtime
import sys
import types
# Replace the renderer's own modules and matplotlib with fakes.
fake = types.ModuleType("fake")
for name in list(sys.modules):
    if name.startswith(("matplotlib", "render", "PIL", "numpy")):
        sys.modules[name] = fake
sys.path.insert(0, "/tmp")
