"""Reflection and revision (rl/reflect.py, launch/reflect.py).

Acceptance: with an oracle critic built from the labels `visual_erm.perturb` injects, a scripted
policy that first answers with the perturbed code and fixes it only when the feedback names every
injected discrepancy raises the mean reward from round 0 to the last round. With an untrained tiny
Visual-ERM and a tiny policy the loop (and `python -m launch.reflect`) runs end to end.
"""
import json
import os
import random

import numpy as np
import pytest
from PIL import Image

import render
from launch import reflect as cli
from policy import tiny_checkpoint
from rl.reflect import (
    BLANK_FEEDBACK,
    UNREADABLE_FEEDBACK,
    Attempt,
    OracleCritic,
    Trajectory,
    format_feedback,
    image_key,
    pixel_critique,
    reflect,
    score_answers,
    summarize,
)
from rl.task_sources import RLTask
from visual_erm.judge import GREEDY_SETTINGS, VisualERM
from visual_erm.perturb import perturb
from visual_erm.perturb.verify import verify
from visual_erm.prompts import code_language, judge_prompt, policy_prompt, revision_prompt
from visual_erm.schema import Critique, Discrepancy
from visual_erm.tasks import generate

CASES = (("svg", 0), ("svg", 1), ("table", 0), ("chart", 2))


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=20) as p:
        yield p


@pytest.fixture(scope="module")
def labelled(pool):
    """RLTasks from the generators, their perturbed code and the verified labels of the edits."""
    tasks, oracle, scripts = [], OracleCritic(), {}
    for kind, seed in CASES:
        task = generate(kind, seed)
        edit = perturb(task, random.Random(f"reflect:{kind}:{seed}"), 2)
        verdict = verify(pool, kind, task.code, edit)
        assert verdict.kept, verdict.reason
        rl_task = RLTask(f"synthetic/{kind}/{seed}", kind, verdict.reference_image, policy_prompt(kind), task.code,
                         "synthetic")
        critique = Critique(verdict.discrepancies)
        oracle.add(verdict.reference_image, verdict.candidate_image, critique)
        scripts[image_key(verdict.reference_image)] = (kind, edit.code, task.code, critique)
        tasks.append(rl_task)
    return tasks, oracle, ScriptedPolicy(scripts)


def fenced(kind, code):
    return f"```{code_language(kind)}\n{code}\n```"


class ScriptedPolicy:
    """First answer: the perturbed code. Revision: the reference code if the feedback lists every
    injected discrepancy (category, location and description), else the perturbed code again."""

    def __init__(self, scripts):
        self.scripts, self.prompts = scripts, []

    def answer(self, messages):
        out = []
        for conversation in messages:
            content = conversation[0]["content"]
            image = next(item["image"] for item in content if item["type"] == "image")
            text = next(item["text"] for item in content if item["type"] == "text")
            self.prompts.append(text)
            kind, perturbed, reference, critique = self.scripts[image_key(image)]
            fixed = text != policy_prompt(kind) and all(
                f"[{e.category}, severity {e.severity}] {e.location}: {e.description}" in text for e in critique.errors)
            out.append(fenced(kind, reference if fixed else perturbed))
        return out


def test_oracle_critique_drives_revision_to_the_reference(labelled, pool, tmp_path):
    tasks, oracle, policy = labelled
    trajectories = reflect(tasks, policy, oracle, pool, rounds=2)
    summary = summarize(trajectories, "best")
    rewards = [r["reward_mean"] for r in summary["rounds"]]
    print(f"[reflect] oracle critic, {len(tasks)} tasks: mean reward per round {[round(x, 4) for x in rewards]}")
    assert rewards[0] < rewards[-1] == 2.0 and summary["final"]["reward_mean"] == 2.0
    assert summary["improved"] == len(tasks) and summary["rounds"][1]["done"] == 1.0
    for trajectory in trajectories:
        first, fixed, carried = trajectory.attempts
        assert first.critique.errors and 1.0 < first.reward < 2.0
        assert first.feedback == format_feedback(first.critique)
        assert fixed.done and fixed.reward == 2.0 and not carried.revised and carried.reward == 2.0
        headline = {"chart": "low_level", "table": "teds", "svg": "ssim"}[trajectory.task.kind]
        assert first.metrics[headline] <= fixed.metrics[headline] == pytest.approx(1.0)
        strict = "teds" if trajectory.task.kind == "table" else "ssim"  # chart edits here: ticks, markers
        assert first.metrics[strict] < fixed.metrics[strict] == pytest.approx(1.0)
    # The revision prompt carries the previous code and the critique verbatim.
    kind, seed = CASES[0]
    first = trajectories[0].attempts[0]
    assert revision_prompt(kind, first.code, first.feedback) in policy.prompts
    for kind in ("svg", "table", "chart"):
        assert summary["rounds"][0][f"{kind}/reward_mean"] < summary["rounds"][1][f"{kind}/reward_mean"]

    out = str(tmp_path / "report")
    written = cli.write_outputs(out, trajectories, "best")
    assert written["final"]["reward_mean"] == 2.0
    rows = [json.loads(line) for line in open(os.path.join(out, "rounds.jsonl"))]
    assert len(rows) == 3 * len(tasks) and sum(r["kept"] for r in rows) == len(tasks)
    folder = os.path.join(out, cli.task_folder(0, tasks[0]))
    for name in ("reference.png", "round_0.svg", "round_0.png", "round_0.critique.json", "round_1.png"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert not os.path.exists(os.path.join(folder, "round_2.png"))  # done: nothing new to write
    saved = json.load(open(os.path.join(folder, "round_0.critique.json")))
    assert saved["critique"]["errors"] == first.critique.to_dict()["errors"]
    page = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert page.count("<tr><td>synthetic/") == len(tasks) and "tasks/0000_synthetic_svg_0/round_1.png" in page
    table = open(os.path.join(out, "summary.md")).read()
    assert "| final (best) | 2.000 |" in table and "svg ssim" in table and "table teds" in table


def test_failures_become_verbatim_feedback_and_keep_picks(labelled, pool):
    tasks, oracle, _ = labelled
    svg = tasks[0]
    answers = ["```svg\n<svg xmlns='http://www.w3.org/2000/svg'><rect></circle></svg>\n```", "I cannot draw this.",
               "```svg\n<svg xmlns='http://www.w3.org/2000/svg' width='128' height='128'></svg>\n```"]
    broken, no_code, blank = score_answers([svg] * 3, answers, 0, critic=oracle, pool=pool,
                                           reference_traces=[None] * 3)
    assert broken.render.error is not None and broken.critique is None and broken.reward == 0.0
    assert broken.feedback == f"The code failed to render ({broken.render.error.kind}): {broken.render.error.message}"
    assert no_code.feedback == "No ```svg code block was found in your answer." and no_code.render is None
    assert blank.feedback == BLANK_FEEDBACK and blank.reward == 0.0 and blank.metrics["render_rate"] == 1.0
    # The oracle without a label: one discrepancy locating the changed pixels; none for the reference.
    other = Image.new("RGB", svg.reference_image.size, "white")
    located = pixel_critique("svg", svg.reference_image, other)
    assert len(located.errors) == 1 and "region x" in located.errors[0].description
    assert oracle.critique(["svg"], [svg.reference_image], [svg.reference_image.copy()])[0].errors == ()
    assert format_feedback(Critique.invalid("no JSON")) == UNREADABLE_FEEDBACK
    # keep=best takes the highest reward (earliest on ties), keep=last the last attempt.
    worse = Critique((Discrepancy("shape_error", 3, "x", "y"),) * 5)
    attempts = [Attempt(r, "", "c", None, c, "", reward, {}) for r, (c, reward) in
                enumerate([(worse, 1.7), (Critique(()), 1.9), (worse, 1.9), (worse, 1.2)])]
    trajectory = Trajectory(svg, attempts)
    assert trajectory.final_index("best") == 1 and trajectory.final_index("last") == 3
    assert summarize([trajectory], "last")["final"]["reward_mean"] == pytest.approx(1.2)
    with pytest.raises(ValueError):
        trajectory.final("first")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_reflect")
    texts = [generate("svg", s).code for s in range(4)] + [policy_prompt("svg"), judge_prompt("svg")] * 10
    dirs = {}
    for name, seed in (("policy", 0), ("judge", 1)):
        dirs[name] = str(root / name)
        tiny_checkpoint.build(dirs[name], texts, vocab_size=320, max_pixels=32 * 32, seed=seed)
    return dirs


def test_tiny_visual_erm_critiques_in_the_loop(labelled, pool, tiny_models):
    tasks, _, policy = labelled
    svg_tasks = [t for t in tasks if t.kind == "svg"]
    judge = VisualERM.from_pretrained(tiny_models["judge"], max_new_tokens=6, settings=GREEDY_SETTINGS)
    trajectories = reflect(svg_tasks, policy, judge, pool, rounds=1)
    rewards = [r["reward_mean"] for r in summarize(trajectories)["rounds"]]
    print(f"[reflect] scripted policy + untrained tiny Visual-ERM: mean reward per round {rewards}")
    for trajectory in trajectories:
        first, second = trajectory.attempts
        assert first.critique is not None and second.critique is not None  # rendered, so judged
        assert first.feedback == format_feedback(first.critique)
        assert 1.0 <= first.reward <= 2.0


def test_cli_end_to_end_with_tiny_policy_and_judge(pool, tiny_models, tmp_path):
    out = tmp_path / "cli"
    summary = cli.main([f"--policy={tiny_models['policy']}", f"--judge={tiny_models['judge']}", "--data=synthetic",
                        "--kind=svg", "--n=2", "--rounds=1", "--max_new_tokens=8", "--judge_max_new_tokens=6",
                        "--judge_sampling=greedy", "--batch_size=2", f"--out={out}"], pool=pool)
    print(f"[reflect] tiny policy + tiny judge: mean reward per round "
          f"{[round(r['reward_mean'], 4) for r in summary['rounds']]}")
    assert summary["tasks"] == 2 and len(summary["rounds"]) == 2
    assert all(0.0 <= r["reward_mean"] <= 2.0 for r in summary["rounds"])
    rows = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [(r["id"], r["round"]) for r in rows] == [("synthetic/svg/0", 0), ("synthetic/svg/0", 1),
                                                     ("synthetic/svg/1", 0), ("synthetic/svg/1", 1)]
    assert all(r["feedback"] for r in rows if r["round"] == 0)  # the untrained policy is told what went wrong
    assert (out / "report.html").exists() and (out / "summary.md").exists()
    assert np.isfinite(json.loads((out / "summary.json").read_text())["final"]["reward_mean"])
    # A source config as JSON, and the oracle critic instead of a model.
    shapes = '{"name": "shapes", "params": {"start": 0, "stop": 10, "canvas": 32}}'
    summary = cli.main([f"--policy={tiny_models['policy']}", "--judge=oracle", f"--data={shapes}", "--n=3",
                        "--rounds=1", "--max_new_tokens=8", f"--out={tmp_path / 'oracle'}"], pool=pool)
    assert summary["tasks"] == 3 and summary["headline"] == {"svg": "ssim"}
