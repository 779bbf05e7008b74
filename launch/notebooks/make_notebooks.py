"""Writes the three notebooks from the cells below (edit here, then run this file).

Each notebook runs top to bottom on a CPU in minutes, in Colab too (a CPU runtime is enough). The
first cell installs the project when it is not importable yet: from the checkout the notebook was
opened in, else from REPO_URL (the one place to name your repository). Hosts without user namespaces
(Colab's container) get the render pool's weaker sandbox, with one warning saying what is missing
(ALLOW_WEAK_SANDBOX). With VISUAL_ERM_REDUCED=1 (what CI sets) they use smaller sizes.
"""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = '''import importlib.util, os, subprocess, sys
REPO_URL = os.environ.get("VISUAL_ERM_REPO_URL", "")  # <- your repository, e.g. "https://github.com/YOU/visual-erm-jax"
ALLOW_WEAK_SANDBOX = True  # Colab's container has no user namespaces: render with the weaker sandbox (one warning)
REDUCED = os.environ.get("VISUAL_ERM_REDUCED") == "1"  # CI runs the notebooks small

def find_checkout(start):
    """The visual-erm-jax checkout holding `start` (this notebook's folder), if any."""
    here = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(here, "setup.py")) and os.path.isdir(os.path.join(here, "visual_erm")):
            return here
        if os.path.dirname(here) == here:
            return None
        here = os.path.dirname(here)

if importlib.util.find_spec("visual_erm") is None:
    checkout = find_checkout(os.getcwd())
    if checkout is None and not REPO_URL:
        raise RuntimeError("visual-erm-jax is not installed and this notebook is not in a checkout: "
                           "set REPO_URL in this cell to the project's git URL")
    # No extra: Colab's own jax and torch stay (see README, "Two commands on a fresh machine").
    target = ["-e", checkout] if checkout else [f"visual-erm-jax @ git+{REPO_URL}"]
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *target])
    if checkout:
        sys.path.insert(0, checkout)
    importlib.invalidate_caches()
import visual_erm
print("visual-erm-jax from", os.path.dirname(os.path.dirname(visual_erm.__file__)))'''

QUICKSTART = [
    new_markdown_cell("# Quick start: render, critique and reward one example\n\n"
                      "A generated chart, the same chart with injected errors (exact labels, checked in pixels), "
                      "both rendered in the sandbox; then a critique and its reward."),
    new_code_cell(SETUP),
    new_code_cell('''import random
import render
from visual_erm.tasks import generate
from visual_erm.perturb import perturb
from visual_erm.perturb.verify import verify

pool = render.RenderPool(workers=2, allow_weak_sandbox=ALLOW_WEAK_SANDBOX)
print(render.sandbox.format_report(pool.report))
task = generate("chart", 7)
pair = perturb(task, random.Random(0), 2)
verdict = verify(pool, "chart", task.code, pair)
print("kept:", verdict.kept, verdict.reason)
print(task.code)'''),
    new_code_cell('''import matplotlib.pyplot as plt
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, image, title in zip(axes, (verdict.reference_image, verdict.candidate_image), ("reference", "candidate")):
    ax.imshow(image); ax.set_title(title); ax.axis("off")
plt.show()'''),
    new_code_cell('''from visual_erm.schema import Critique, parse_critique
from visual_erm.reward import critique_reward
labels = Critique(verdict.discrepancies)
print(labels.to_json(indent=1))
print("reward of the exact labels:", critique_reward(labels, "chart"))
print("a messy judge output parses too:", parse_critique("<think>hmm</think>```json\\n" + labels.to_json() + "\\n```", "chart").valid)'''),  # noqa: E501 -- notebook cell source, kept verbatim
    new_markdown_cell("A (tiny, untrained) Visual-ERM judge built locally: its critiques are noise, "
                      "but the call is the one you make with a trained judge (`VisualERM.from_pretrained(HF_DIR)`)."),
    new_code_cell('''import tempfile
from policy import tiny_checkpoint
from visual_erm.judge import GREEDY_SETTINGS, VisualERM
from visual_erm.prompts import judge_prompt
model_dir = tempfile.mkdtemp()
tiny_checkpoint.build(model_dir, [judge_prompt(k) for k in ("chart", "table", "svg")] * 20 + [labels.to_json()] * 20,
                      vocab_size=400, max_pixels=48 * 48)
judge = VisualERM.from_pretrained(model_dir, max_new_tokens=24, settings=GREEDY_SETTINGS)
critique = judge.critique(["chart"], [verdict.reference_image], [verdict.candidate_image])[0]
print("valid:", critique.valid, "reward:", critique_reward(critique, "chart"))
pool.close()'''),
]

ABLATION = [
    new_markdown_cell("# Reward ablation at toy scale\n\nVisual-ERM (here with a pixel-oracle critic standing in for a "
                      "trained judge) against text, pixel and embedding rewards: first on reward-hacking probes, "
                      "then on pairs with 0-4 injected errors (a good reward falls as errors are added)."),
    new_code_cell(SETUP),
    new_code_cell('''import render
from policy.config import Qwen3VLConfig
from policy.image_processor import ImageProcessor
from policy.model import init_model
from rl.probes import probe_table, run_probes
from rl.rewards import VisionEmbedder
from visual_erm.tasks import generate

pool = render.RenderPool(workers=2, allow_weak_sandbox=ALLOW_WEAK_SANDBOX)
embedder = VisionEmbedder(init_model(Qwen3VLConfig.tiny()), ImageProcessor(patch_size=4, min_pixels=64, max_pixels=64 * 64))
tables = {}
for kind in ("chart", "table", "svg"):
    scores = run_probes(generate(kind, 0), pool, embedder=embedder)
    tables[kind] = scores
    print(probe_table(scores, kind)); print()'''),  # noqa: E501 -- notebook cell source, kept verbatim
    new_code_cell('''import matplotlib.pyplot as plt
import numpy as np
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for ax, (kind, scores) in zip(axes, tables.items()):
    probes = list(scores); rewards = [r for r in next(iter(scores.values())) if not np.isnan(scores["reference"][r])]
    for j, r in enumerate(rewards):
        ax.bar(np.arange(len(probes)) + j / (len(rewards) + 1), [scores[p][r] / max(scores["reference"][r], 1e-9) for p in probes],
               width=1 / (len(rewards) + 1), label=r)
    ax.set_xticks(np.arange(len(probes)) + 0.35, probes, rotation=20); ax.set_title(f"{kind}: reward / reference reward")
axes[0].legend(fontsize=7)
plt.tight_layout(); plt.show()'''),  # noqa: E501 -- notebook cell source, kept verbatim
    new_code_cell('''import random
from rl.probes import pixel_oracle_critique
from rl.rewards import RewardInput, compute_rewards
from rl.task_sources import RLTask
from visual_erm.perturb import NotApplicable, perturb

rows = []
n = 4 if REDUCED else 12
for seed in range(n):
    task = generate("svg", 100 + seed)
    reference = pool.map(["svg"], [task.code])[0].image
    rl_task = RLTask(f"svg/{seed}", "svg", reference, "", task.code, "synthetic")
    for edits in range(5):
        try:
            code = perturb(task, random.Random(seed), edits).code
        except NotApplicable:
            continue
        rendered = pool.map(["svg"], [code], size=reference.size)[0]
        critique = pixel_oracle_critique("svg", reference, rendered.image) if rendered.ok else None
        item = RewardInput(rl_task, f"```svg\\n{code}\\n```", rendered, critique)
        rows.append((edits, {r: float(compute_rewards(r, [item], embedder=embedder)[0])
                             for r in ("visual_erm", "text_similarity", "ssim", "mse", "embedding_cosine")}))
for reward in rows[0][1]:
    means = [np.mean([r[reward] for e, r in rows if e == k]) for k in range(5)]
    plt.plot(range(5), means, marker="o", label=reward)
plt.xlabel("injected errors"); plt.ylabel("mean reward"); plt.legend(); plt.title("rewards vs injected errors (svg)")
plt.show()
pool.close()'''),
]

SCORE = [
    new_markdown_cell("# Score a judge on the synthetic VC-RewardBench set\n\n"
                      "Items from held-out generator seeds, written "
                      "in the published layout; the deterministic scorer matches errors by optimal assignment."),
    new_code_cell(SETUP),
    new_code_cell('''import tempfile
from visual_erm.bench import synth
from visual_erm.bench.cli import format_row, score
data = synth.build(tempfile.mkdtemp(), n=12 if REDUCED else 90, allow_weak_sandbox=ALLOW_WEAK_SANDBOX)
results = {judge: score(judge, data) for judge in ("oracle", "random", "none")}
for judge, result in results.items():
    print(format_row(judge, result))'''),
    new_code_cell('''import matplotlib.pyplot as plt
judges = list(results)
plt.bar(judges, [results[j]["overall"]["soft"]["f1"] for j in judges], color=["seagreen", "gray", "lightgray"])
plt.ylabel("soft F1"); plt.title("VC-RewardBench (synthetic)"); plt.show()
print("per error type (oracle):", {k: round(v["soft"]["f1"], 3) for k, v in results["oracle"]["by_type"].items()})'''),
    new_markdown_cell("Score your own judge: "
                      "`python -m visual_erm.bench --judge=visual_erm --checkpoint=HF_DIR --data=PATH`, "
                      "or its cached outputs with `--judge=pred_json`."),
]


def write(name, cells):
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nbformat.write(notebook, os.path.join(HERE, name))


if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
    write("02_reward_ablation.ipynb", ABLATION)
    write("03_score_a_judge.ipynb", SCORE)
