# expect: forbidden
import os
import site
import matplotlib
# A .pth file or a style written to disk would outlive this task (new files only).
targets = [os.path.join(site.getsitepackages()[0], "visual_erm_poison___TOKEN__.pth"),
           os.path.join(matplotlib.get_data_path(), "stylelib", "visual_erm_poison___TOKEN__.mplstyle")]
for path in targets:
    with open(path, "x") as handle:
        handle.write("import os\n")
