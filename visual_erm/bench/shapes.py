"""The judge bench of the toy shapes task: its held-out sets, and measures a constant critique cannot pass.

`build_bench` and `build_ranking` write VC-RewardBench-style JSONL sets of held-out shape pairs
(made by `visual_erm.shapes_data`, the task's reward data) that ``python -m visual_erm.bench
--data=shapes`` scores.

Soft F1 on a bench where most pairs carry the same few kinds of error rewards a judge that writes one
plausible critique for everything (a fixed copy of such a critique scores like the model). These do not:

* ``identical_no_errors``: of the pairs whose candidate is the reference, the share judged with a
  valid, empty critique;
* ``f1/<edit>``: per edit (`shapes_data.EDITS`: moved, resized, recolored, reshaped, missing, extra),
  detection F1 over pairs: a pair counts as predicted for an edit when some discrepancy's description
  names it (`shapes_data.edit_of`), as labelled when its reference does; ``f1/min`` is the worst edit;
* ``ranking_accuracy``: for the same reference, the one-edit candidate must get a higher reward
  (`visual_erm.reward.critique_reward`) than the three-edit one (a tie counts half).

`constant_critique` is the baseline printed beside a judge: the bench's most frequent labelled critique
that reports some error, written for every pair (the empty critique is the ``none`` judge).
"""
from __future__ import annotations

import collections
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tqdm

import render
from visual_erm import shapes_data
from visual_erm.bench import synth
from visual_erm.bench.data import BenchItem
from visual_erm.reward import critique_reward
from visual_erm.schema import Critique, parse_critique
from visual_erm.shapes_data import EDITS, edit_of

TARGETS = {"identical_no_errors": 0.9, "ranking_accuracy": 0.9, "f1/min": 0.8}
BENCH_FILE = f"shapes_bench_v{shapes_data.DATA_VERSION}.jsonl"
RANKING_FILE = f"shapes_ranking_v{shapes_data.DATA_VERSION}.jsonl"
# held out, and apart from the bench's and the GRPO held-out seeds
RANKING_SEED = shapes_data.HELD_OUT_SEED + 100_000


def build_bench(out: str, n: int = 200, *, workers: int = 2, allow_weak_sandbox: bool = False) -> str:
    """A VC-RewardBench-style JSONL set of `n` held-out shape pairs under `out`; reuses one of at least
    `n` (whose first `n` are these: seeds run in order)."""
    path = os.path.join(out, BENCH_FILE)
    if synth.has_items(path, n):
        return path
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    pairs = shapes_data.shape_pairs(n, shapes_data.HELD_OUT_SEED, workers, f"building shape bench in {out}",
                                    allow_weak_sandbox=allow_weak_sandbox)
    examples = [example for example, _ in pairs]
    return synth.write_items(path, [synth.item_line(out, e, i) for i, e in enumerate(examples)])


def build_ranking(out: str, n: int = 60, *, workers: int = 2, allow_weak_sandbox: bool = False) -> str:
    """`n` held-out references, each with a one-edit and a three-edit candidate (ids ``rank-SEED-1`` /
    ``rank-SEED-3``, adjacent lines), as VC-RewardBench JSONL under `out`: a judge ranks them right when
    the one-edit candidate gets the higher reward. Reuses a complete set."""
    path = os.path.join(out, RANKING_FILE)
    if synth.has_items(path, 2 * n):
        return path
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    examples, seed = [], RANKING_SEED
    with render.RenderPool(workers=workers, allow_weak_sandbox=allow_weak_sandbox) as pool:
        bar = tqdm.tqdm(total=n, unit="pair", desc=f"building shape ranking pairs in {out}")
        while len(examples) < 2 * n:
            pair = shapes_data.ranking_pair(pool, seed)
            seed += 1
            if pair is not None:
                examples += pair
                bar.update(1)
        bar.close()
    return synth.write_items(path, [synth.item_line(out, e, i) for i, e in enumerate(examples)])


def as_critique(output: Any, kind: str) -> Critique:
    """A judge output as `visual_erm.bench.cli` keeps them (a critique dict, or "" when it did not parse)."""
    if isinstance(output, Critique):
        return output
    return parse_critique(json.dumps(output) if isinstance(output, Mapping) else str(output or ""), kind)


def edits_named(critique: Critique) -> set[str]:
    return {edit for edit in (edit_of(d.description) for d in critique.errors) if edit}


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def detection(items: Sequence[BenchItem], outputs: Mapping[str, Any]) -> dict[str, float]:
    """``identical_no_errors`` and per-edit detection F1 of a judge's outputs on bench items."""
    counts = {edit: collections.Counter() for edit in EDITS}
    identical = []
    for item in items:
        critique = as_critique(outputs.get(item.id, ""), item.kind)
        labelled, named = edits_named(item.reference), edits_named(critique) if critique.valid else set()
        if not item.reference.errors:
            identical.append(critique.valid and not critique.errors)
        for edit in EDITS:
            key = {(True, True): "tp", (False, True): "fp", (True, False): "fn"}.get((edit in labelled, edit in named))
            if key:
                counts[edit][key] += 1
    out = {"identical_no_errors": float(np.mean(identical)) if identical else float("nan")}
    scored = {edit: _f1(c["tp"], c["fp"], c["fn"]) for edit, c in counts.items() if c["tp"] + c["fn"]}
    out.update({f"f1/{edit}": value for edit, value in scored.items()})
    out["f1/min"] = min(scored.values()) if scored else float("nan")
    return out


def ranking_accuracy(items: Sequence[BenchItem], outputs: Mapping[str, Any]) -> float:
    """Share of references whose one-edit candidate (``rank-SEED-1``) out-scores the three-edit one."""
    by_id = {item.id: item for item in items}
    wins = []
    for item in items:
        if not item.id.endswith("-1"):
            continue
        other = by_id.get(item.id[:-2] + "-3")
        if other is None:
            continue
        one, three = (critique_reward(as_critique(outputs.get(i.id, ""), i.kind), i.kind) for i in (item, other))
        wins.append(1.0 if one > three else 0.5 if one == three else 0.0)
    if not wins:
        raise ValueError("no (rank-SEED-1, rank-SEED-3) pairs among the ranking items")
    return float(np.mean(wins))


def constant_critique(items: Sequence[BenchItem]) -> dict:
    """The most frequent labelled critique of `items` that reports an error (as a dict)."""
    texts = collections.Counter(json.dumps(item.reference.to_dict(), sort_keys=True) for item in items
                                if item.reference.errors)
    return json.loads(texts.most_common(1)[0][0])


def measures(bench_items, bench_outputs, ranking_items, ranking_outputs) -> dict[str, float]:
    """Every measure of the module, and ``passes`` (1.0 when each `TARGETS` value is reached)."""
    out = detection(bench_items, bench_outputs)
    out["ranking_accuracy"] = ranking_accuracy(ranking_items, ranking_outputs)
    out["passes"] = float(all(out[name] >= target for name, target in TARGETS.items()))
    return out


def format_measures(name: str, values: Mapping[str, float]) -> str:
    edits = "  ".join(f"{edit} {values[f'f1/{edit}']:.2f}" for edit in EDITS if f"f1/{edit}" in values)
    return (f"{name:>12}  identical->no errors {values['identical_no_errors']:.3f}  ranking "
            f"{values['ranking_accuracy']:.3f}  F1 min {values['f1/min']:.3f} ({edits})")
