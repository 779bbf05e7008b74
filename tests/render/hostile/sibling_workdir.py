# expect: forbidden
import os
# Other tasks' working directories live next to ours.
raise ValueError(repr(os.listdir(os.path.dirname(os.getcwd()))))
