# expect: forbidden
import os
# The user's project (not the Python install) is not readable; neither is its listing.
names = os.listdir("__REPO_ROOT__")
raise ValueError(repr(names) + open("__REPO_ROOT__/setup.py").read())
