"""The main job's held-out yardstick: exact answers score perfectly, wrong ones do not, the sheet is drawn."""
import pytest
from PIL import Image

import render
from rl.heldout import HeldOutEval, format_table, heldout_tasks

SPEC = {"name": "shapes", "params": {"start": 1_000_000_000, "stop": 1_000_000_010, "canvas": 32}}


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2) as p:
        yield p


def test_scores_renders_and_contact_sheet(pool, tmp_path):
    tasks = heldout_tasks(SPEC, pool, 3)
    assert [t.id for t in tasks] == [f"shapes/{1_000_000_000 + i}" for i in range(3)]
    evaluation = HeldOutEval(tasks, max_new_tokens=48)
    exact = evaluation.score([f"```svg\n{t.reference_code}\n```" for t in tasks], pool, "exact")
    assert {k: exact[k] for k in ("heldout/render_rate", "heldout/ssim", "heldout/mse")} == {
        "heldout/render_rate": 1.0, "heldout/ssim": pytest.approx(1.0), "heldout/mse": pytest.approx(0.0)}
    assert exact["heldout/iou"] == 1.0 and exact["heldout/acc_all"] == 1.0 and exact["heldout/distinct"] == 3
    blank = '```svg\n<svg width="32" height="32"></svg>\n```'
    wrong = evaluation.score([blank, "no code here", blank], pool, "wrong")
    assert wrong["heldout/render_rate"] == pytest.approx(2 / 3)
    assert wrong["heldout/ssim"] < 0.9 and wrong["heldout/mse"] > 0.0
    assert wrong["heldout/iou"] == 0.0 and wrong["heldout/acc_all"] == 0.0 and wrong["heldout/blank_rate"] == 1.0
    baselines = evaluation.baselines()
    assert baselines["heldout/baseline/blank/iou"] == 0.0 and baselines["heldout/baseline/blank/ssim"] > 0.3
    assert baselines["heldout/baseline/constant/iou"] < 1.0
    table = format_table({**{f"{k}/start": v for k, v in wrong.items()}, **exact, **baselines})
    assert "| iou | 0.000 | 1.000 |" in table and "| acc_all |" in table
    assert evaluation.renders["wrong"][1] is None and evaluation.renders["exact"][0].size == (32, 32)
    sheet = Image.open(evaluation.contact_sheet(str(tmp_path / "sheet.png"), columns=3))
    assert sheet.size[1] == 3 * (32 * 3 + 4)  # target, exact, wrong rows


def test_needs_tasks():
    with pytest.raises(ValueError, match="at least one task"):
        HeldOutEval([], max_new_tokens=8)
