"""`python -m launch.evaluate` end to end: oracle predictions score perfectly, corrupted ones do not,
a local dataset path loads, and a tiny policy checkpoint generates its own predictions."""
import json
import pathlib
import re

import pytest

import render
from launch import evaluate
from rl.datasets import load_pubtabnet
from visual_erm.prompts import code_language
from visual_erm.tasks import generate

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "rl" / "fixtures"
SEEDS = (0, 1)
PERFECT = {
    "chart": {"execution_rate": 1.0, "text_f1": 1.0, "layout_f1": 1.0, "type_f1": 1.0, "color_f1": 1.0,
              "low_level": 1.0},
    "table": {"teds": 1.0, "teds_structure": 1.0, "ned": 0.0},
    "svg": {"render_rate": 1.0, "ssim": 1.0, "mse": 0.0},
}


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=20) as p:
        yield p


def fenced(kind: str, code: str) -> str:
    return f"Here is the code:\n```{code_language(kind)}\n{code}\n```"


def write_predictions(path, rows: dict) -> str:
    path.write_text("".join(json.dumps({"id": i, "completion": c}) + "\n" for i, c in rows.items()))
    return str(path)


def run(tmp_path, pool, *flags):
    out = tmp_path / "out"
    result = evaluate.main([*flags, f"--out={out}"], pool=pool)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["metrics"].keys() == result["metrics"].keys()
    for kind, values in result["metrics"].items():
        assert on_disk["metrics"][kind] == pytest.approx(values, nan_ok=True)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return result, samples, (out / "metrics.md").read_text()


def test_oracle_predictions_score_perfectly(tmp_path, pool, capsys):
    oracle = {f"synthetic/{k}/{s}": fenced(k, generate(k, s).code) for k in PERFECT for s in SEEDS}
    preds = write_predictions(tmp_path / "oracle.jsonl", oracle)
    result, samples, md = run(tmp_path, pool, "--kind=all", "--data=synthetic", f"--limit={len(SEEDS)}",
                              f"--predictions={preds}")
    assert result["tasks"] == 6 and result["missing_predictions"] == 0 and len(samples) == 6
    for kind, expected in PERFECT.items():
        got = result["metrics"][kind]
        assert got["n"] == len(SEEDS) and got["skipped"] == 0
        assert {k: got[k] for k in expected} == pytest.approx(expected)
    assert all(row["error"] is None for row in samples)
    assert "| 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in md  # chart, in percent
    assert "| 100.0 | 100.0 | 0.0000 |" in md  # table and svg: NED and MSE raw, lower is better
    assert md.strip() in capsys.readouterr().out


def corrupt(kind: str, code: str) -> str:
    if kind == "chart":  # another title and another colour for every series
        code, titles = re.subn(r'set_title\("[^"]*"', 'set_title("Something else"', code)
        code, colors = re.subn(r'color="[^"]*"', 'color="#ff00ff"', code)
        assert titles and colors, code
    elif kind == "table":  # the last digit of the table changes
        digit = re.search(r"\d(?=\D*$)", code)
        code = code[: digit.start()] + str((int(digit.group()) + 1) % 10) + code[digit.end():]
    else:  # every fill becomes green
        code, fills = re.subn(r'fill="#[0-9a-fA-F]{6}"', 'fill="#00ff00"', code)
        assert fills, code
    return fenced(kind, code)


def test_corrupted_predictions_score_lower(tmp_path, pool):
    rows = {f"synthetic/{k}/0": corrupt(k, generate(k, 0).code) for k in PERFECT}
    rows["synthetic/chart/1"] = "```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2]\n```"  # syntax error
    rows["synthetic/svg/1"] = "I cannot draw this."  # no code
    rows["other/id"] = "ignored"  # not in the dataset; synthetic/table/1 has no prediction at all
    preds = write_predictions(tmp_path / "corrupted.jsonl", rows)
    result, samples, _ = run(tmp_path, pool, "--data=synthetic", "--limit=2", f"--predictions={preds}")
    by_id = {row["id"]: row for row in samples}
    chart, table, svg = (result["metrics"][k] for k in ("chart", "table", "svg"))
    assert result["missing_predictions"] == 1
    assert by_id["synthetic/chart/1"]["error"] == "syntax" and chart["execution_rate"] == 0.5
    assert by_id["synthetic/chart/0"]["text_f1"] < 1 and by_id["synthetic/chart/0"]["color_f1"] < 1
    assert by_id["synthetic/chart/0"]["type_f1"] == by_id["synthetic/chart/0"]["layout_f1"] == 1.0
    assert chart["low_level"] < 0.5
    assert 0 < by_id["synthetic/table/0"]["ned"] < 0.05 and by_id["synthetic/table/0"]["teds"] < 1.0
    assert by_id["synthetic/table/1"]["error"] == "no_code" and by_id["synthetic/table/1"]["ned"] == 1.0
    assert table["teds"] < 0.5 and table["ned"] > 0.5 and table["teds_structure"] == pytest.approx(0.5)
    assert by_id["synthetic/svg/1"]["error"] == "no_code" and svg["render_rate"] == 0.5
    # A missing SVG is scored as StarVector scores it: a white canvas (SSIM well above 0 on icons).
    assert by_id["synthetic/svg/0"]["mse"] > 0 and svg["ssim"] < 0.75 and by_id["synthetic/svg/1"]["mse"] > 0


def test_local_dataset_path_and_usage_errors(tmp_path, pool):
    root = FIXTURES / "pubtabnet"
    oracle = {task.id: task.code for task in load_pubtabnet(root)}
    preds = write_predictions(tmp_path / "pubtabnet.jsonl", oracle)
    result, samples, _ = run(tmp_path, pool, "--kind=table", f"--data=pubtabnet:{root}", f"--predictions={preds}")
    assert result["metrics"]["table"]["n"] == len(oracle) == len(samples) > 0
    assert result["metrics"]["table"]["teds"] == 1.0 and result["metrics"]["table"]["ned"] == 0.0
    with pytest.raises(SystemExit, match="unknown data source 'nowhere'; allowed: synthetic"):
        evaluate.main(["--data=nowhere", f"--predictions={preds}", f"--out={tmp_path}"], pool=pool)
    with pytest.raises(SystemExit, match="chartmimic is read from a local copy: give its path, --data=chartmimic:PATH"):
        evaluate.main(["--data=chartmimic", f"--predictions={preds}", f"--out={tmp_path}"], pool=pool)
    with pytest.raises(ValueError, match="local copy"):
        evaluate.load_tasks("plot2code", "chart", limit=None, params={}, pool=pool)
    with pytest.raises(SystemExit, match="no chart tasks"):
        evaluate.main(["--kind=chart", f"--data=pubtabnet:{root}", f"--predictions={preds}", f"--out={tmp_path}"],
                      pool=pool)
    with pytest.raises(SystemExit, match="exactly one of --predictions"):  # they exclude each other
        evaluate.parse_args(["--data=synthetic", f"--predictions={preds}", "--policy=x", "--out=y"])
    with pytest.raises(SystemExit, match="--limit=0"):
        evaluate.parse_args(["--data=synthetic", f"--predictions={preds}", "--out=y", "--limit=0"])
    (tmp_path / "dup.jsonl").write_text('{"id": "a", "completion": "x"}\n{"id": "a", "completion": "y"}\n')
    with pytest.raises(ValueError, match="appears twice"):
        evaluate.read_predictions(str(tmp_path / "dup.jsonl"))
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        evaluate.read_predictions(str(tmp_path / "bad.jsonl"))


def test_policy_checkpoint_generates_its_predictions(tmp_path, pool):
    from policy import tiny_checkpoint

    checkpoint = tmp_path / "tiny"
    tiny_checkpoint.build(str(checkpoint), [generate("svg", s).code for s in range(3)], vocab_size=320)
    result, samples, _ = run(tmp_path, pool, "--kind=svg", "--data=synthetic", "--limit=2",
                             f"--policy={checkpoint}", "--max_new_tokens=6", "--batch_size=2")
    written = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [row["id"] for row in written] == ["synthetic/svg/0", "synthetic/svg/1"]
    assert all(isinstance(row["completion"], str) for row in written)
    svg = result["metrics"]["svg"]
    assert svg["n"] == 2 and 0.0 <= svg["render_rate"] <= 1.0 and 0.0 <= svg["mse"] <= 1.0
    assert [row["id"] for row in samples] == [row["id"] for row in written]


def test_sources_that_need_a_path_are_the_loaders_with_a_required_path():
    import inspect

    from rl.task_mix import _factories

    def needs_path(load) -> bool:
        path = inspect.signature(load).parameters.get("path")
        return path is not None and path.default is inspect.Parameter.empty

    required = {name for name, load in _factories().items() if needs_path(load)}
    assert required == set(evaluate.NEEDS_PATH)
