"""A synthetic VC-RewardBench-style set from held-out generator seeds.

Items are written in the published layout (one JSONL file; `gt_img_path`,
`pred_img_path` relative to it; `human_errors` typed by `type`, the key the official
scorer reads), so `visual_erm.bench.load_bench` reads them exactly as it reads the real
benchmark. Labels are the exact injected discrepancies.
"""
from __future__ import annotations

import json
import os

import tqdm

import render
from visual_erm.make_data import make_pair
from visual_erm.tasks import KINDS

HELD_OUT_SEED = 1_000_000_000  # training data uses small seeds; bench seeds start here
ITEMS_FILE = "vc_rewardbench_synthetic.jsonl"


def human_errors(kind: str, critique_json: str) -> list[dict]:
    errors = json.loads(critique_json)["errors"]
    if kind == "table":  # the published table items carry no location
        return [{"type": e["category"], "severity": e["severity"], "description": e["description"]} for e in errors]
    return [{"type": e["category"], "severity": e["severity"], "location": e["location"],
             "description": e["description"]} for e in errors]


def item_line(out: str, example, idx: int) -> str:
    """The JSONL line of one item for a `records.RewardExample`, its two images written under out/images."""
    names = {}
    for role, data in (("gt", example.reference_png), ("pred", example.candidate_png)):
        names[role] = os.path.join("images", f"{example.id}_{role}.png")
        with open(os.path.join(out, names[role]), "wb") as f:
            f.write(data)
    return json.dumps({
        "id": example.id, "idx": idx, "category": example.kind, "source": example.source,
        "gt_img_path": names["gt"], "pred_img_path": names["pred"],
        "human_errors": human_errors(example.kind, example.critique),
    })


def has_items(path: str, n: int) -> bool:
    """Whether the JSONL set at `path` exists with at least `n` items (a cached set to reuse)."""
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return sum(1 for _ in f) >= n


def write_items(path: str, lines: list[str]) -> str:
    """Write the JSONL lines at `path` atomically (a half-written set is never reused); returns `path`."""
    with open(path + ".partial", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".partial", path)
    return path


def build(out: str, n: int = 300, *, workers: int = 2, kinds=KINDS, max_edits: int = 4,
          allow_weak_sandbox: bool = False) -> str:
    """Write `n` items (kinds in turn) under `out`, with a progress bar; returns the JSONL path.

    Reuses a set of at least `n` items (its first `n` are the same items: seeds run in order), so a
    caller that wants exactly `n` reads the first `n` (`visual_erm.bench.cli.score(..., n=)` does).
    """
    path = os.path.join(out, ITEMS_FILE)
    if has_items(path, n):
        return path
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    lines, attempt = [], 0
    bar = tqdm.tqdm(total=n, unit="item", desc=f"building synthetic VC-RewardBench in {out}")
    with render.RenderPool(workers=workers, allow_weak_sandbox=allow_weak_sandbox) as pool:
        while len(lines) < n:
            kind, seed = kinds[attempt % len(kinds)], HELD_OUT_SEED + attempt
            attempt += 1
            example, _ = make_pair(pool, kind, seed, max_edits)
            if example is None:
                continue
            lines.append(item_line(out, example, len(lines)))
            bar.update(1)
    bar.close()
    return write_items(path, lines)
