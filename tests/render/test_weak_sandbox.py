"""A host that refuses namespaces (a container such as Colab's): off by default, and with
`allow_weak_sandbox=True` the pool renders the same pixels with ONE warning naming what is missing.

Such a host is simulated in a child process, whose whole tree inherits the refusal:
  * `gvisor_like`: a seccomp filter refuses unshare/setns (EPERM) and knows neither Landlock
    nor pidfd_open (ENOSYS), as gVisor, which runs Colab, does;
  * `no_cap_sys_admin`: root without CAP_SYS_ADMIN (capsh), as in a default Docker container.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GVISOR_LIKE = """
import errno
import pyseccomp as sc
refuse = sc.SyscallFilter(defaction=sc.ALLOW)
for name in ("unshare", "setns"):
    refuse.add_rule(sc.ERRNO(errno.EPERM), name)
for name in ("landlock_create_ruleset", "pidfd_open"):
    refuse.add_rule(sc.ERRNO(errno.ENOSYS), name)
refuse.load()
"""
RUN_POOL = """
import json, time, warnings
import numpy as np
import render
HALF_RED = '''
import matplotlib.pyplot as plt
fig = plt.figure()
ax = fig.add_axes([0, 0, 1, 1])
ax.bar([0.5], [1.0], width=1.0, color="red")
ax.set_xlim(0, 2); ax.set_ylim(0, 1); ax.axis("off")
'''
out = {}
start = time.monotonic()
try:
    render.RenderPool(workers=1)
except render.SandboxUnavailable as exc:
    out["refused"] = {"seconds": time.monotonic() - start, "message": str(exc)}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with render.RenderPool(workers=1, timeout_s=20, allow_weak_sandbox=True) as pool:
        result = pool.submit("chart", HALF_RED).result()
        forbidden = pool.submit("chart", "import os\\nos.fork()\\n").result()
out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
out["error"] = str(result.error) if result.error else None
out["forbidden"] = str(forbidden.error)
if result.error is None:
    img = np.asarray(result.image)
    out["shape"] = img.shape
    out["left_red"] = bool((img[:, 5:315] == [255, 0, 0]).all())
    out["right_white"] = bool((img[:, 325:] == [255, 255, 255]).all())
print("RESULT " + json.dumps(out))
"""


def run_on_simulated_host(prefix: list[str], preamble: str) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO)
    code = textwrap.dedent(preamble) + RUN_POOL
    done = subprocess.run(prefix + [sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def simulated_hosts():
    hosts = [pytest.param([], GVISOR_LIKE, id="gvisor_like")]
    capsh = shutil.which("capsh")
    usable = capsh is not None and os.geteuid() == 0
    hosts.append(pytest.param(["capsh", "--drop=cap_sys_admin", "--"] if usable else [], "", id="no_cap_sys_admin",
                              marks=pytest.mark.skipif(not usable, reason="needs root and capsh")))
    return hosts


@pytest.mark.slow
@pytest.mark.parametrize("prefix, preamble", simulated_hosts())
def test_weak_sandbox_renders_with_one_warning_naming_what_is_missing(prefix, preamble):
    if prefix:
        prefix = prefix + ["-c", "exec \"$@\"", "python"]  # capsh runs bash; bash runs python
    out = run_on_simulated_host(prefix, preamble)
    assert "refused" in out, "the pool must refuse a weak sandbox by default"
    assert out["refused"]["seconds"] < 60 and "allow_weak_sandbox=True" in out["refused"]["message"]
    assert len(out["warnings"]) == 1, out["warnings"]
    warning = out["warnings"][0]
    assert "WEAK sandbox" in warning
    for missing in ("network_namespace", "pid_namespace", "private_namespaces"):
        assert missing in warning
    assert out["error"] is None, out
    assert out["shape"] == [480, 640, 3] and out["left_red"] and out["right_white"]
    assert out["forbidden"].startswith("forbidden"), out["forbidden"]  # seccomp still refuses fork
