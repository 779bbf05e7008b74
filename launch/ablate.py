"""The reward comparison: the same tiny GRPO budget under each reward, several seeds.

    python -m launch.ablate [--rewards=visual_erm,ssim,text_similarity,embedding_cosine] [--seeds=0,1,2]
                            [--config=configs/tiny_grpo_svg.py] [--out=workdir/ablate] [--config.key=value ...]

Each (reward, seed) pair is one `rl.trainer.train` run of the config (the main
job's by default) in OUT/<reward>/seed<k>, scored by the held-out task metric
the config names (`heldout/ssim` before and after RL). A run that raises is
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

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(_ROOT, "configs", "tiny_grpo_svg.py"),
                                          "base GRPO config", lock_config=False)
_REWARDS = flags.DEFINE_list("rewards", ["visual_erm", "ssim", "text_similarity", "embedding_cosine"],
                             "rewards to compare")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds (policy init, task order, sampling)")
_OUT = flags.DEFINE_string("out", "workdir/ablate", "where runs, results.json, table.md and ablate.png go")
_PROBE_TASKS = flags.DEFINE_integer("probe_tasks", 4, "held-out targets each probe is built from")

log = logging.getLogger(__name__)
METRIC = "heldout/ssim"
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
    """{reward: {probe: mean share of the reference's reward}} over `n_tasks` held-out targets."""
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

    shares = {r: {p: [] for p in PROBES} for r in rewards}
    with render.RenderPool(workers=config.render_workers, allow_weak_sandbox=config.allow_weak_sandbox) as pool:
        for task in heldout_tasks(config.heldout.tasks, pool, n_tasks):
            scores = probes.run_probes(task, pool, rewards=rewards, critic=critic, **deps)
            for reward in rewards:
                control = scores["reference"][reward]
                for probe in PROBES:
                    shares[reward][probe].append(scores[probe][reward] / control if control > 0 else math.nan)
    return {r: {p: float(np.nanmean(v)) if not np.all(np.isnan(v)) else math.nan for p, v in row.items()}
            for r, row in shares.items()}


def summarize(runs: dict, verdicts: dict) -> dict:
    """Per reward: the held-out metric's mean and spread over seeds, start and end, failures, probes."""
    table = {}
    for reward, by_seed in runs.items():
        good = [r for r in by_seed.values() if "error" not in r and METRIC in r]
        entry = {"seeds": len(by_seed), "failed": {s: r["error"] for s, r in by_seed.items() if "error" in r}}
        if good:
            after = np.array([r[METRIC] for r in good])
            before = np.array([r[f"{METRIC}/start"] for r in good])
            entry.update(after_mean=float(after.mean()), after_std=float(after.std()),
                         before_mean=float(before.mean()), gain_mean=float((after - before).mean()),
                         gain_std=float((after - before).std()),
                         reward_final=float(np.mean([r["reward_mean"] for r in good])))
            parse = [r["critique_parse_rate"] for r in good if "critique_parse_rate" in r]
            if parse:
                entry["critique_parse_rate"] = float(np.mean(parse))
        entry["fooled_by"] = [p for p, share in verdicts.get(reward, {}).items() if share >= FOOLED_SHARE]
        entry["probe_share"] = verdicts.get(reward, {})
        table[reward] = entry
    return table


def markdown(table: dict) -> str:
    lines = [f"| reward | runs ok | {METRIC} after RL (mean ± std) | change vs warm start | "
             + " | ".join(PROBES) + " |", "|---|---:|---:|---:|" + "---|" * len(PROBES)]
    for reward, e in table.items():
        ok = f"{e['seeds'] - len(e['failed'])}/{e['seeds']}"
        after = f"{e['after_mean']:.3f} ± {e['after_std']:.3f}" if "after_mean" in e else "failed"
        gain = f"{e['gain_mean']:+.3f} ± {e['gain_std']:.3f}" if "gain_mean" in e else "-"
        cells = []
        for probe in PROBES:
            share = e["probe_share"].get(probe, math.nan)
            cells.append("-" if math.isnan(share) else f"{'FOOLED' if share >= FOOLED_SHARE else 'resists'} "
                         f"({share:.2f})")
        lines.append(f"| {reward} | {ok} | {after} | {gain} | " + " | ".join(cells) + " |")
    for reward, e in table.items():
        for seed, error in e["failed"].items():
            lines.append(f"\n{reward} seed {seed} failed: `{error}`")
    return "\n".join(lines)


def plot(table: dict, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    after = [table[n].get("after_mean", math.nan) for n in names]
    spread = [table[n].get("after_std", 0.0) for n in names]
    before = [table[n].get("before_mean", math.nan) for n in names]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, before, 0.4, label="warm start", color="#bbbbbb")
    ax.bar(x + 0.2, after, 0.4, yerr=spread, capsize=4, label="after GRPO", color="#1f77b4")
    ax.set_xticks(x, [n + ("\n(failed)" if math.isnan(a) else "") for n, a in zip(names, after)])
    ax.set_ylabel(f"held-out {METRIC.split('/')[-1]}")
    ax.set_title("GRPO reward comparison (toy shapes task)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ablate(config, rewards, seeds, out: str, probe_tasks: int) -> dict:
    """Run every (reward, seed), probe every reward; write and return the summary table."""
    os.makedirs(out, exist_ok=True)
    runs = {r: {str(s): run_one(config, r, int(s), os.path.join(out, r, f"seed{s}")) for s in seeds}
            for r in rewards}
    policy_dir = os.path.join(out, rewards[0], f"seed{seeds[0]}", "policy_model")
    verdicts = probe_verdicts(config, list(rewards), policy_dir, probe_tasks) if probe_tasks else {}
    table = summarize(runs, verdicts)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"runs": runs, "table": table}, f, indent=1, default=str)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(markdown(table) + "\n")
    plot(table, os.path.join(out, "ablate.png"))
    return table


def main(argv) -> None:
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    absl_logging.set_verbosity(absl_logging.WARNING)
    table = ablate(_CONFIG.value, _REWARDS.value, _SEEDS.value, _OUT.value, _PROBE_TASKS.value)
    print(markdown(table))


if __name__ == "__main__":
    app.run(main)
