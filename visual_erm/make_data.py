"""Write reward data: (reference, edited rendering, exact critique) pairs.

    python -m visual_erm.make_data --out=DIR --n=1000 [--kinds=chart,table,svg] [--workers=2]

Attempt `a` makes a task of kind `kinds[a % len(kinds)]` from seed `seed + a`,
injects 0..4 edits, and keeps the pair only if the pixel check confirms every
label (visual_erm/perturb/verify.py). Output: ArrayRecord shards (see
visual_erm/records.py) plus progress.json; rerunning the same command resumes
after the last complete shard and produces the same data.

The TFDS builder `visual_erm_reward` (`python -m visual_erm.datasets.reward --data_dir=DIR`)
runs `run` once per split (train, validation, test from disjoint seed ranges; sizes from the
builder config) into staging folders under DIR/downloads and writes the pairs as a TFDS
ArrayRecord dataset under DIR/visual_erm_reward/CONFIG/VERSION; the same resumability and
progress bar.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import json
import os
import random
import time

import tqdm
from absl import flags

import render
from policy import cli
from visual_erm import records
from visual_erm.perturb import NotApplicable, perturb
from visual_erm.perturb.verify import verify
from visual_erm.schema import Critique
from visual_erm.tasks import KINDS, generate

EDIT_COUNTS, EDIT_WEIGHTS = (0, 1, 2, 3, 4), (1, 4, 3, 2, 1)


def make_pair(pool, kind: str, seed: int, max_edits: int):
    """One candidate pair -> (RewardExample or None, verdict-ish stats)."""
    task = generate(kind, seed)
    rng = random.Random(f"edits:{kind}:{seed}")
    counts = [c for c in EDIT_COUNTS if c <= max_edits]
    n_edits = rng.choices(counts, weights=EDIT_WEIGHTS[: len(counts)])[0]
    try:
        perturbation = perturb(task, rng, n_edits)
    except NotApplicable:  # not enough compatible edits for this task: try the next seed
        return None, {"candidate_edits": 0, "rejected_edits": 0}
    verdict = verify(pool, kind, task.code, perturbation)
    stats = {"candidate_edits": len(perturbation.edits), "rejected_edits": verdict.rejected_edits}
    if not verdict.kept:
        return None, stats
    example = records.RewardExample(
        id=f"{kind}-{seed}", kind=kind, source=task.source, seed=seed,
        reference_png=records.png_bytes(verdict.reference_image),
        candidate_png=records.png_bytes(verdict.candidate_image),
        reference_code=task.code, candidate_code=perturbation.code,
        critique=Critique(verdict.discrepancies).to_json(),
        edits=tuple(edit.name for edit in perturbation.edits),
    )
    return example, stats


def _load_progress(path: str) -> dict:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"next_attempt": 0, "written": 0, "shards": 0, "candidate_edits": 0, "rejected_edits": 0,
            "rejected_pairs": 0, "labels": {}, "edits": {}, "seconds": 0.0}


def _save_progress(path: str, progress: dict) -> None:
    with open(path + ".partial", "w") as f:
        json.dump(progress, f, indent=1, sort_keys=True)
    os.replace(path + ".partial", path)


def run(out: str, n: int, kinds=KINDS, workers: int = 2, seed: int = 0, shard_size: int = 250,
        max_edits: int = 4, batch: int = 8, pool: render.RenderPool | None = None) -> dict:
    """Generate until `n` pairs are written; resumable. Returns the progress dict.

    Renders with `pool` when given (one pool for several runs), else with a pool of `workers`."""
    os.makedirs(out, exist_ok=True)
    progress_path = os.path.join(out, "progress.json")
    progress = _load_progress(progress_path)
    settings = {"kinds": list(kinds), "seed": seed, "shard_size": shard_size, "max_edits": max_edits}
    if progress.get("config", {}) not in ({}, settings):
        raise ValueError(f"{out} was written with other settings: {progress['config']}")
    progress["config"] = {"kinds": list(kinds), "seed": seed, "shard_size": shard_size, "max_edits": max_edits}
    if progress["written"] >= n:
        return progress
    labels = collections.Counter(progress["labels"])
    edit_counts = collections.Counter(progress["edits"])
    buffer: list[records.RewardExample] = []
    attempt = progress["next_attempt"]
    start = time.perf_counter()
    bar = tqdm.tqdm(total=n, initial=progress["written"], unit="pair", desc="reward pairs")
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(render.RenderPool(workers=workers))
        threads = stack.enter_context(concurrent.futures.ThreadPoolExecutor(batch))
        while progress["written"] + len(buffer) < n:
            attempts = range(attempt, attempt + batch)
            jobs = [threads.submit(make_pair, pool, kinds[a % len(kinds)], seed + a, max_edits) for a in attempts]
            for job in jobs:
                example, stats = job.result()
                progress["candidate_edits"] += stats["candidate_edits"]
                progress["rejected_edits"] += stats["rejected_edits"]
                attempt += 1
                if example is None:
                    progress["rejected_pairs"] += 1
                    continue
                buffer.append(example)
                bar.update(1)
                labels.update(f"{example.kind}/{e['category']}/severity {e['severity']}"
                              for e in json.loads(example.critique)["errors"])
                edit_counts.update(f"{example.kind}/{name}" for name in example.edits)
                edit_counts[f"{example.kind}/n_edits={len(example.edits)}"] += 1
                full = len(buffer) == shard_size or progress["written"] + len(buffer) >= n
                if full:
                    records.write_shard(os.path.join(out, records.SHARD_PATTERN.format(progress["shards"])), buffer)
                    progress.update(written=progress["written"] + len(buffer), shards=progress["shards"] + 1,
                                    next_attempt=attempt, labels=dict(labels), edits=dict(edit_counts),
                                    seconds=progress["seconds"] + time.perf_counter() - start)
                    start = time.perf_counter()
                    _save_progress(progress_path, progress)
                    buffer = []
                    if progress["written"] >= n:
                        break
    bar.close()
    return progress


def summary(progress: dict) -> str:
    rate = progress["written"] / max(progress["seconds"], 1e-9)
    share = progress["rejected_edits"] / max(progress["candidate_edits"], 1)
    lines = [f"pairs written: {progress['written']} in {progress['seconds']:.0f} s ({rate:.2f} pairs/s)",
             f"candidate edits rejected by the pixel check: {progress['rejected_edits']}/{progress['candidate_edits']}"
             f" ({100 * share:.1f} %)",
             f"candidate pairs rejected: {progress['rejected_pairs']}", "labels:"]
    lines += [f"  {name}: {count}" for name, count in sorted(progress["labels"].items())]
    lines += ["edits:"] + [f"  {name}: {count}" for name, count in sorted(progress["edits"].items())]
    return "\n".join(lines)


FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "a make_data folder (ArrayRecord shards of msgpack records)", flag_values=FLAGS)
flags.DEFINE_integer("n", 1000, "pairs to write in all (resumes towards it)", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_list("kinds", list(KINDS), f"task kinds, in turn, comma-separated: any of {', '.join(KINDS)}",
                  flag_values=FLAGS)
flags.register_validator("kinds", lambda kinds: bool(kinds) and set(kinds) <= set(KINDS),
                         f"must be a non-empty comma-separated list of {', '.join(KINDS)}", flag_values=FLAGS)
flags.DEFINE_integer("workers", 2, "render workers", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "first generator seed", lower_bound=0, flag_values=FLAGS)
flags.DEFINE_integer("shard_size", 250, "pairs per ArrayRecord shard", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("max_edits", 4, "most edits a pair gets", lower_bound=0, flag_values=FLAGS)
flags.DEFINE_bool("allow_weak_sandbox", False, "render even where the sandbox is incomplete (no user namespaces, "
                  "as in Colab): one warning names what is missing", flag_values=FLAGS)
flags.mark_flag_as_required("out", flag_values=FLAGS)


def main(argv=None) -> None:
    cli.parse(FLAGS, argv, __doc__)
    with render.RenderPool(workers=FLAGS.workers, allow_weak_sandbox=FLAGS.allow_weak_sandbox) as pool:
        progress = run(FLAGS.out, FLAGS.n, tuple(FLAGS.kinds), FLAGS.workers, FLAGS.seed, FLAGS.shard_size,
                       FLAGS.max_edits, pool=pool)
    print(summary(progress))


if __name__ == "__main__":
    main()
