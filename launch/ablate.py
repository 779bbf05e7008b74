"""The reward comparison: the same tiny GRPO budget under each reward, several seeds.

    python -m launch.ablate [--rewards=visual_erm,ssim,text_similarity,embedding_cosine] [--seeds=0,1,2]
                            [--config=configs/tiny_grpo_svg.py] [--out=workdir/ablate] [--config.key=value ...]

Each (reward, seed) pair is one `rl.trainer.train` run of the config (the main
job's by default) in OUT/<reward>/seed<k>, scored by the held-out task metric
the config names (`heldout/*` before and after RL: colour-aware IoU, all-attribute
accuracy, blank rate, distinct drawings, SSIM). A run that raises is
reported as failed with its error, never dropped. Every reward is also put to
the hacking probes (`rl.probes`) on a few held-out targets, with the trained
judge as the Visual-ERM critic: a probe "fools" a reward when it scores at least
FOOLED_SHARE of what the reference code itself scores. Writes OUT/results.json,
OUT/table.md (printed) and OUT/ablate.png.
"""
from __future__ import annotations

import json
import logging
import math
import os
import traceback

import numpy as np
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from rl.models import UNTRAINED_POLICY

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(_ROOT, "configs", "tiny_grpo_svg.py"),
                                          "base GRPO config", lock_config=False)
_REWARDS = flags.DEFINE_list("rewards", ["visual_erm", "oracle_critic", "ssim", "embedding_cosine",
                                         "text_similarity"], "rewards to compare")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds (policy init, task order, sampling)")
_OUT = flags.DEFINE_string("out", "workdir/ablate", "where runs, results.json, table.md and ablate.png go")
_PROBE_TASKS = flags.DEFINE_integer("probe_tasks", 4, "held-out targets each probe is built from")

log = logging.getLogger(__name__)
METRICS = ("heldout/iou", "heldout/acc_all", "heldout/blank_rate", "heldout/distinct", "heldout/ssim")
HEADLINE = METRICS[0]
BASELINE_REWARD = "visual_erm"  # per-seed differences are taken against it
FOOLED_SHARE = 0.8
PROBES = ("blank", "lookalike", "broken_copy", "injection")


def run_one(config, reward: str, seed: int, workdir: str) -> dict:
    """One GRPO run; its final record, or {"error": ...} when it raises."""
    from rl.trainer import train

    config = config.copy_and_resolve_references()
    config.reward, config.seed = reward, seed
    try:
        return train(config, workdir)
    except Exception as exc:
        log.error("%s seed %d failed:\n%s", reward, seed, traceback.format_exc())
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def probe_verdicts(config, rewards, policy_dir: str, n_tasks: int) -> dict[str, dict[str, float]]:
    """{reward: {probe: {"reward", "reference", "share"}}}: a probe's mean reward over `n_tasks` held-out
    targets, the reference code's, and their ratio."""
    import jax.numpy as jnp

    import render
    from policy.hf_io import load_pretrained
    from policy.processor import Processor
    from rl import probes
    from rl.heldout import heldout_tasks
    from rl.rewards import VisionEmbedder
    from visual_erm.judge import GREEDY_SETTINGS, VisualERM

    deps = {}
    if "embedding_cosine" in rewards:
        _, model = load_pretrained(policy_dir, dtype=jnp.float32)
        deps["embedder"] = VisionEmbedder(model, Processor.from_pretrained(policy_dir).image_processor)
    critic = probes.pixel_oracle_critique
    if "visual_erm" in rewards and config.judge.checkpoint:
        judge = VisualERM.from_pretrained(config.judge.checkpoint, max_new_tokens=config.judge.max_new_tokens,
                                          settings=GREEDY_SETTINGS)

        def critic(kind, ref, cand):
            return judge.critique([kind], [ref], [cand])[0]

    values = {r: {p: [] for p in (*PROBES, "reference")} for r in rewards}
    with render.RenderPool(workers=config.render_workers, allow_weak_sandbox=config.allow_weak_sandbox) as pool:
        for task in heldout_tasks(config.heldout.tasks, pool, n_tasks):
            scores = probes.run_probes(task, pool, rewards=rewards, critic=critic, **deps)
            for reward in rewards:
                for probe in (*PROBES, "reference"):
                    values[reward][probe].append(scores[probe][reward])
    out = {}
    for reward, row in values.items():
        reference = float(np.mean(row["reference"]))
        out[reward] = {p: {"reward": float(np.mean(row[p])), "reference": reference,
                           "share": float(np.mean(row[p])) / reference if reference > 0 else math.nan}
                       for p in PROBES}
    return out


def summarize(runs: dict, verdicts: dict) -> dict:
    """Per reward: each held-out metric's mean and spread over seeds (after RL, and its change from the
    start), per-seed paired differences against `BASELINE_REWARD`, failures, and probe verdicts."""
    table, paired_with = {}, runs.get(BASELINE_REWARD, {})
    for reward, by_seed in runs.items():
        good = {s: r for s, r in by_seed.items() if "error" not in r and HEADLINE in r}
        entry = {"seeds": len(by_seed), "failed": {s: r["error"] for s, r in by_seed.items() if "error" in r},
                 "metrics": {}}
        for metric in METRICS:
            have = {s: r for s, r in good.items() if metric in r}
            if not have:
                continue
            after = np.array([r[metric] for r in have.values()])
            start = np.array([r[f"{metric}/start"] for r in have.values()])
            paired = [r[metric] - paired_with[s][metric] for s, r in have.items()
                      if reward != BASELINE_REWARD and metric in paired_with.get(s, {})]
            entry["metrics"][metric] = {"after_mean": float(after.mean()), "after_std": float(after.std()),
                                        "start_mean": float(start.mean()), "gain_mean": float((after - start).mean()),
                                        "per_seed": {s: r[metric] for s, r in have.items()},
                                        "vs_baseline_reward": paired}
        if good:
            entry["reward_final"] = float(np.mean([r["reward_mean"] for r in good.values()]))
        entry["probes"] = verdicts.get(reward, {})
        entry["fooled_by"] = [p for p, v in entry["probes"].items() if _fooled(v, entry.get("reward_final"))]
        table[reward] = entry
    return table


def _fooled(verdict: dict, trained: float | None) -> bool:
    """A probe fools a reward when it scores FOOLED_SHARE of the reference's reward, or at least what the
    policies trained on that reward reach."""
    share, value = verdict.get("share", math.nan), verdict.get("reward", math.nan)
    return share >= FOOLED_SHARE or (trained is not None and value >= trained)


def markdown(table: dict, baselines: dict | None = None) -> str:
    """The comparison table (one row per reward, the blank and best-constant baselines under it) and
    the probes' table (a probe's reward beside the reference's and the trained policies')."""
    short = [m.split("/")[-1] for m in METRICS]
    lines = ["| reward | runs ok | " + " | ".join(f"{m} after RL (mean ± std; start)" for m in short)
             + f" | {short[0]} - {BASELINE_REWARD}, per seed |", "|---|---:|" + "---:|" * (len(METRICS) + 1)]
    for reward, e in table.items():
        cells = []
        for metric in METRICS:
            m = e["metrics"].get(metric)
            digits = 1 if metric.endswith("distinct") else 3
            cells.append("failed" if m is None else
                         f"{m['after_mean']:.{digits}f} ± {m['after_std']:.{digits}f} ({m['start_mean']:.{digits}f})")
        head = e["metrics"].get(HEADLINE, {})
        diffs = ", ".join(f"{d:+.3f}" for d in head.get("vs_baseline_reward", [])) if reward != BASELINE_REWARD else "-"
        lines.append(f"| {reward} | {e['seeds'] - len(e['failed'])}/{e['seeds']} | " + " | ".join(cells)
                     + f" | {diffs or '-'} |")
    for name, values in (baselines or {}).items():
        cells = [f"{values[m]:.3f}" if m in values else "" for m in METRICS]
        lines.append(f"| *{name}* | | " + " | ".join(cells) + " | |")
    lines += ["", "| reward | trained policies' reward | " + " | ".join(PROBES) + " |",
              "|---|---:|" + "---|" * len(PROBES)]
    for reward, e in table.items():
        trained = e.get("reward_final")
        cells = []
        for probe in PROBES:
            v = e["probes"].get(probe)
            if not v or math.isnan(v.get("reward", math.nan)):
                cells.append("-")
                continue
            verdict = "FOOLED" if _fooled(v, trained) else "resists"
            cells.append(f"{verdict} ({v['reward']:.2f}; ref {v['reference']:.2f})")
        lines.append(f"| {reward} | {'-' if trained is None else f'{trained:.2f}'} | " + " | ".join(cells) + " |")
    for reward, e in table.items():
        for seed, error in e["failed"].items():
            lines.append(f"\n{reward} seed {seed} failed: `{error}`")
    return "\n".join(lines)


def baselines_of(runs: dict) -> dict:
    """The blank-canvas and best-constant rows, from any successful run's record (same held-out targets)."""
    for by_seed in runs.values():
        for record in by_seed.values():
            if "error" not in record and any(k.startswith("heldout/baseline/") for k in record):
                return {label: {m: record[f"heldout/baseline/{key}/{m.split('/')[-1]}"] for m in METRICS
                                if f"heldout/baseline/{key}/{m.split('/')[-1]}" in record}
                        for label, key in (("blank canvas", "blank"), ("best constant", "constant"))}
    return {}


def plot(table: dict, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    after = [table[n]["metrics"].get(HEADLINE, {}).get("after_mean", math.nan) for n in names]
    spread = [table[n]["metrics"].get(HEADLINE, {}).get("after_std", 0.0) for n in names]
    before = [table[n]["metrics"].get(HEADLINE, {}).get("start_mean", math.nan) for n in names]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, before, 0.4, label="start of RL", color="#bbbbbb")
    ax.bar(x + 0.2, after, 0.4, yerr=spread, capsize=4, label="after GRPO", color="#1f77b4")
    ax.set_xticks(x, [n + ("\n(failed)" if math.isnan(a) else "") for n, a in zip(names, after)])
    ax.set_ylabel(f"held-out {HEADLINE.split('/')[-1]}")
    ax.set_title("GRPO reward comparison (toy shapes task)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ablate(config, rewards, seeds, out: str, probe_tasks: int) -> dict:
    """Run every (reward, seed) from the config's policy (seeds paired across rewards), probe every
    reward; write results.json, table.md and ablate.png; return the summary table."""
    os.makedirs(out, exist_ok=True)
    runs = {r: {str(s): run_one(config, r, int(s), os.path.join(out, r, f"seed{s}")) for s in seeds}
            for r in rewards}
    policy_dir = config.model.checkpoint or os.path.join(out, rewards[0], f"seed{seeds[0]}", UNTRAINED_POLICY)
    verdicts = probe_verdicts(config, list(rewards), policy_dir, probe_tasks) if probe_tasks else {}
    table = summarize(runs, verdicts)
    baselines = baselines_of(runs)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"runs": runs, "table": table, "baselines": baselines}, f, indent=1, default=str)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(markdown(table, baselines) + "\n")
    plot(table, os.path.join(out, "ablate.png"))
    return table


def main(argv) -> None:
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    absl_logging.set_verbosity(absl_logging.WARNING)
    out = _OUT.value
    ablate(_CONFIG.value, _REWARDS.value, _SEEDS.value, out, _PROBE_TASKS.value)
    with open(os.path.join(out, "table.md")) as f:
        print(f.read())


if __name__ == "__main__":
    app.run(main)
