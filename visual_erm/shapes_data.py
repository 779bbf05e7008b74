"""Reward data for the toy single-shape task: (reference, edited shape, exact critique) pairs.

    python -m visual_erm.shapes_data --out=DIR --n=3000 [--seed=0]

The main job's policy redraws one circle or square (`visual_erm.tasks.shapes`);
what it gets wrong is the shape's place, size, colour or kind, a missing shape or
an extra one. Each pair takes a reference shape, applies 0-3 of those edits, and
keeps the pair only if `visual_erm.perturb.verify` confirms every label in
pixels (the same check as the chart/table/SVG data, so severities come from the
changed area). Output: the ArrayRecord shards `visual_erm.data` reads; the same pairs
(`shape_pairs`, `ranking_pair`) make the held-out judge bench of `visual_erm.bench.shapes`.
"""
from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import random

import tqdm
from absl import flags

import render
from policy import cli
from visual_erm import records
from visual_erm.perturb.base import Edit, Perturbation
from visual_erm.perturb.verify import verify
from visual_erm.schema import Critique
from visual_erm.tasks.base import PROBE_COLOR
from visual_erm.tasks.shapes import COLORS, SHAPE_KINDS, Shape, shape_spec, svg_code

HELD_OUT_SEED = 1_000_000_000  # bench/eval shapes; training data and GRPO tasks use small seeds
# Up to four edits, moves up to 12 px: the policy's wrong answers in RL are often a different shape of another
# colour elsewhere, not one small edit; identical pairs weigh 3/13 so "no errors" is learnt as an answer.
EDIT_COUNTS, EDIT_WEIGHTS = (0, 1, 2, 3, 4), (3, 4, 3, 2, 1)
MOVES = (-12, -8, -6, -4, 0, 4, 6, 8, 12)
DATA_VERSION = 2  # part of a data folder's settings: a folder written by another version is regenerated
SHAPE_EDITS = ("moved", "resized", "recolored", "reshaped")
EDITS = (*SHAPE_EDITS, "missing", "extra")  # every edit a pair can carry
NEW_SIZES = (4, 6, 8, 10, 12)
CANVAS = 32


def _radius(shape: Shape) -> int:
    return shape.size // 2 + 2 if shape.kind == "circle" else shape.size // 2


def _inside(shape: Shape, canvas: int) -> bool:
    r = _radius(shape)
    return r <= shape.x <= canvas - r and r <= shape.y <= canvas - r


def _direction(dx: int, dy: int) -> str:
    words = (["up"] if dy < 0 else ["down"] if dy > 0 else []) + (["left"] if dx < 0 else ["right"] if dx > 0 else [])
    return " and ".join(words)


def _edit_shape(name: str, shape: Shape, rng: random.Random, canvas: int) -> tuple[Shape, str, str]:
    """(edited shape, category, description) for one edit of the reference shape."""
    if name == "moved":
        for _ in range(50):
            dx, dy = rng.choice(MOVES), rng.choice(MOVES)
            moved = Shape(shape.kind, shape.color, shape.size, shape.x + dx, shape.y + dy)
            if (dx or dy) and _inside(moved, canvas):
                return moved, "shape_error", f"moved {_direction(dx, dy)}"
        raise ValueError("no room to move")
    if name == "resized":
        size = rng.choice([s for s in NEW_SIZES if s != shape.size])
        resized = Shape(shape.kind, shape.color, size, shape.x, shape.y)
        if not _inside(resized, canvas):
            size = min(s for s in NEW_SIZES if s < shape.size)
            resized = Shape(shape.kind, shape.color, size, shape.x, shape.y)
        return resized, "shape_error", "too large" if resized.size > shape.size else "too small"
    if name == "recolored":
        color = rng.choice([c for c in COLORS if c != shape.color])
        return (Shape(shape.kind, color, shape.size, shape.x, shape.y), "style_error",
                f"{color} instead of {shape.color}")
    if name == "reshaped":
        kind = next(k for k in SHAPE_KINDS if k != shape.kind)
        return (Shape(kind, shape.color, shape.size, shape.x, shape.y), "shape_error",
                f"a {kind} instead of a {shape.kind}")
    raise ValueError(f"unknown shape edit {name!r}")


def _extra_shape(shape: Shape, rng: random.Random, canvas: int) -> Shape:
    """A second shape, mostly clear of the first so it does not hide it."""
    best = None
    for _ in range(20):
        size = rng.choice((6, 8, 10))
        candidate = Shape(rng.choice(SHAPE_KINDS), rng.choice(COLORS), size,
                          rng.randrange(size, canvas - size + 1, 2), rng.randrange(size, canvas - size + 1, 2))
        gap = max(abs(candidate.x - shape.x), abs(candidate.y - shape.y)) - _radius(candidate) - _radius(shape)
        if best is None or gap > best[0]:
            best = (gap, candidate)
        if gap >= 2:
            break
    return best[1]


def shape_perturbation(shape: Shape, rng: random.Random, n_edits: int, canvas: int = CANVAS) -> Perturbation:
    """`n_edits` distinct edits of the one-shape SVG of `shape`, with labels and pixel-check codes."""
    reference = [shape]
    probe = (svg_code(reference, canvas, {0: PROBE_COLOR}), svg_code(reference, canvas))
    location = f"the {shape.name}"
    if n_edits == 1 and rng.random() < 0.12:
        edit = Edit("missing", "structure_error", location, "missing", svg_code([], canvas), probe)
        return Perturbation(edit.single_code, (edit,))
    pool = list(SHAPE_EDITS) + ["extra"]
    names = rng.sample(pool, n_edits)
    edits, edited = [], shape
    extra = _extra_shape(shape, rng, canvas) if "extra" in names else None
    for name in sorted(names, key=pool.index):
        if name == "extra":
            continue
        single, category, description = _edit_shape(name, shape, rng, canvas)
        # compose: apply this edit's change of attribute to the running shape
        field = {"moved": ("x", "y"), "resized": ("size",), "recolored": ("color",), "reshaped": ("kind",)}[name]
        edited = Shape(**{**edited.__dict__, **{f: getattr(single, f) for f in field}})
        edits.append(Edit(name, category, location, description, svg_code([single], canvas), probe))
    if extra is not None:
        both = [shape, extra]
        edits.append(Edit("extra", "structure_error", f"extra {extra.kind}", f"an extra {extra.name}",
                          svg_code(both, canvas), (svg_code(both, canvas, {1: PROBE_COLOR}), svg_code(both, canvas))))
    shapes = [edited] + ([extra] if extra is not None else [])
    if not _inside(edited, canvas):
        raise ValueError("edited shape left the canvas")
    return Perturbation(svg_code(shapes, canvas), tuple(edits))


def make_shape_pair(pool, seed: int, canvas: int = CANVAS):
    """One candidate pair for shape `seed` -> (RewardExample or None, stats)."""
    shape = shape_spec(seed, canvas)
    rng = random.Random(f"shape-edits:{seed}")
    n_edits = rng.choices(EDIT_COUNTS, weights=EDIT_WEIGHTS)[0]
    try:
        perturbation = shape_perturbation(shape, rng, n_edits, canvas)
    except ValueError:  # a move or resize that cannot stay on the canvas: try the next seed
        return None, {"candidate_edits": 0, "rejected_edits": 0}
    reference = svg_code([shape], canvas)
    verdict = verify(pool, "svg", reference, perturbation)
    stats = {"candidate_edits": len(perturbation.edits), "rejected_edits": verdict.rejected_edits}
    if not verdict.kept:
        return None, stats
    return records.RewardExample(
        id=f"shapes-{seed}", kind="svg", source="shapes", seed=seed,
        reference_png=records.png_bytes(verdict.reference_image),
        candidate_png=records.png_bytes(verdict.candidate_image),
        reference_code=reference, candidate_code=perturbation.code,
        critique=Critique(verdict.discrepancies).to_json(),
        edits=tuple(edit.name for edit in perturbation.edits),
    ), stats


def shape_pairs(n: int, seed: int, workers: int, desc: str, batch: int = 8, allow_weak_sandbox: bool = False):
    """Yield `n` kept pairs for shape seeds seed, seed + 1, ... in order, plus running stats."""
    stats = collections.Counter()
    kept, attempt = 0, 0
    bar = tqdm.tqdm(total=n, unit="pair", desc=desc)
    with (render.RenderPool(workers=workers, allow_weak_sandbox=allow_weak_sandbox) as pool,
          concurrent.futures.ThreadPoolExecutor(batch) as threads):
        while kept < n:
            jobs = [threads.submit(make_shape_pair, pool, seed + a) for a in range(attempt, attempt + batch)]
            attempt += batch
            for job in jobs:
                example, counts = job.result()
                stats.update(counts)
                if example is None or kept >= n:
                    stats["rejected_pairs"] += example is None
                    continue
                kept += 1
                bar.update(1)
                stats.update(f"label/{e['category']}/severity {e['severity']}"
                             for e in json.loads(example.critique)["errors"])
                stats.update(f"edit/{name}" for name in example.edits or ("none",))
                yield example, stats
    bar.close()


def write_shapes_data(out: str, n: int, *, seed: int = 0, workers: int = 2, shard_size: int = 500) -> dict:
    """Reward-data shards of `n` shape pairs in `out` (regenerated unless complete); returns the stats."""
    progress = os.path.join(out, "progress.json")
    settings = {"n": n, "seed": seed, "shard_size": shard_size, "generator": "shapes", "version": DATA_VERSION}
    if os.path.exists(progress):
        with open(progress) as f:
            done = json.load(f)
        if done.get("settings") == settings:
            return done["stats"]
    os.makedirs(out, exist_ok=True)
    for path in records.shard_paths(out):
        os.remove(path)
    buffer, shards, stats = [], 0, collections.Counter()
    for example, stats in shape_pairs(n, seed, workers, "shape reward pairs"):  # noqa: B007 -- running stats, read after
        buffer.append(example)
        if len(buffer) == shard_size:
            records.write_shard(os.path.join(out, records.SHARD_PATTERN.format(shards)), buffer)
            buffer, shards = [], shards + 1
    if buffer:
        records.write_shard(os.path.join(out, records.SHARD_PATTERN.format(shards)), buffer)
    with open(progress, "w") as f:
        json.dump({"settings": settings, "stats": dict(stats)}, f, indent=1, sort_keys=True)
    return dict(stats)


def edit_of(description: str) -> str | None:
    """Which edit (`EDITS`) a critique's description names, in the wording `_edit_shape` writes
    (read leniently, so a judge's paraphrase still counts); None when it names none."""
    text = description.lower()
    if "extra" in text:
        return "extra"
    if "missing" in text:
        return "missing"
    if "moved" in text:
        return "moved"
    if "large" in text or "small" in text:
        return "resized"
    if "instead of" in text:
        return "reshaped" if any(kind in text for kind in SHAPE_KINDS) else "recolored"
    return None


def ranking_pair(pool, seed: int):
    """(one-edit, three-edit) verified candidates of shape `seed`, or None when either is rejected."""
    shape, rng = shape_spec(seed), random.Random(f"shape-ranking:{seed}")
    reference = svg_code([shape])
    out = []
    for n_edits in (1, 3):
        try:
            perturbation = shape_perturbation(shape, rng, n_edits)
        except ValueError:
            return None
        verdict = verify(pool, "svg", reference, perturbation)
        if not verdict.kept:
            return None
        out.append(records.RewardExample(
            id=f"rank-{seed}-{n_edits}", kind="svg", source="shapes_ranking", seed=seed,
            reference_png=records.png_bytes(verdict.reference_image),
            candidate_png=records.png_bytes(verdict.candidate_image), reference_code=reference,
            candidate_code=perturbation.code, critique=Critique(verdict.discrepancies).to_json(),
            edits=tuple(edit.name for edit in perturbation.edits)))
    return out


FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "folder for the reward-data shards", flag_values=FLAGS)
flags.DEFINE_integer("n", 3000, "shape pairs to write", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "first shape seed", lower_bound=0, flag_values=FLAGS)
flags.DEFINE_integer("workers", 2, "render workers", lower_bound=1, flag_values=FLAGS)
flags.mark_flag_as_required("out", flag_values=FLAGS)


def main(argv=None) -> None:
    cli.parse(FLAGS, argv, __doc__)
    stats = write_shapes_data(FLAGS.out, FLAGS.n, seed=FLAGS.seed, workers=FLAGS.workers)
    print("\n".join(f"{k}: {v}" for k, v in sorted(stats.items())))


if __name__ == "__main__":
    main()
