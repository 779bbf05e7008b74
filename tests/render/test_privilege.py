"""From inside a real task: no privilege, and namespaces of its own.

The chart script reads its own uid, capability sets and namespace ids and draws them as text;
the trace (trace=True) brings the strings back.
"""
import json
import os

import render

FACTS = """
import json, os
import matplotlib.pyplot as plt
from render import privileges
facts = privileges.facts()
plt.plot([0, 1])
plt.title(json.dumps({"uid": os.getresuid(), "gid": os.getresgid()}))
plt.xlabel(json.dumps(facts["caps"]))
plt.ylabel(json.dumps({n: os.stat(f"/proc/self/ns/{n}").st_ino for n in ("net", "ipc", "uts", "pid")}))
"""


def test_task_holds_no_privilege_and_has_its_own_namespaces():
    with render.RenderPool(workers=1, timeout_s=20) as pool:
        result = pool.submit("chart", FACTS, trace=True).result()
        assert result.error is None, result.error
        texts = dict(result.trace["texts"])
        assert pool.report["no_privileges"]["active"], pool.report["no_privileges"]
    ids = json.loads(texts["title"])
    assert 0 not in ids["uid"] and 0 not in ids["gid"], ids
    labels = [json.loads(text) for role, text in result.trace["texts"] if role == "label"]
    caps = next(label for label in labels if "effective" in label)
    assert caps == {"effective": 0, "permitted": 0, "inheritable": 0, "bounding": 0, "ambient": 0}
    namespaces = next(label for label in labels if "net" in label)
    for name, inode in namespaces.items():
        assert inode != os.stat(f"/proc/self/ns/{name}").st_ino, name


def test_sandbox_report_shows_the_task_as_it_is():
    report = render.sandbox_report()
    task = report["no_privileges"]["task"]
    assert report["no_privileges"]["active"] and 0 not in task["uid"]
    assert not any(task["caps"].values()) and task["no_new_privs"] == 1
    assert task["task_dir"]["bytes"] == render.Limits().disk_mb << 20
