"""Pool robustness: a worker that cannot come back fails its queue, never leaves a future pending."""
import os
import tempfile

import render
from render import pool as pool_module

DRAW = "import matplotlib.pyplot as plt\nplt.bar([0, 1], [2, 1])\n"


def test_map_timeout_then_failed_restarts_resolve_every_future(monkeypatch):
    pool = render.RenderPool(workers=1, timeout_s=20)
    try:
        results = pool.map("chart", ["import time\ntime.sleep(30)\n", DRAW], timeout_s=3, timeout=0.5)
        assert [r.error.kind for r in results] == ["timeout", "timeout"]
        zygote = pool._zygotes[0].process
        monkeypatch.setattr(pool_module, "RESTART_DELAYS_S", (0.0, 0.1))

        def refuse(self, options, start_timeout_s):
            raise RuntimeError("no zygote today")

        monkeypatch.setattr(pool_module._Zygote, "__init__", refuse)
        zygote.kill()
        futures = [pool.submit("chart", DRAW) for _ in range(4)]
        results = [future.result(timeout=60) for future in futures]
        assert all(r.error is not None and r.error.kind == "runtime" for r in results), results
        assert "no render worker is left" in results[-1].error.message
        late = pool.submit("chart", DRAW).result(timeout=5)
        assert late.error.kind == "runtime" and "no zygote today" in late.error.message
        assert not [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"visual-erm-render-{zygote.pid}-")]
    finally:
        pool.close()
