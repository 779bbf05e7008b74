"""The toy shapes task, RL side: one circle or square on a small canvas to redraw as SVG.

Small enough that a tiny policy learns it on a CPU in minutes, rich enough to need the image: the
shape's kind, colour, position and size all vary. The shapes themselves are defined in
`visual_erm.tasks.shapes`, where the judge's reward data for this task is made from the same specs
(`visual_erm.shapes_data`; its judge bench: `visual_erm.bench.shapes`). This module holds what GRPO
needs of the task:

**The task source** (`ShapeSource`): tasks `shape_code(seed)` for a range of seeds.

**Held-out metrics a blank canvas or one constant drawing cannot win** (`shape_scores`, `baselines`).
SSIM on a mostly white 32 px canvas rewards drawing nothing (a white canvas scores ~0.49), and a
policy that draws the same shape for every target can look as good as one that reads the image. So
each prediction is also scored per target on what the task asks for:

* attributes, read from the predicted SVG's first shape: ``kind`` (circle / square), ``color`` (the
  fill name), ``size`` (a square's side, a circle's ``2 * (r - 2)``, as `visual_erm.tasks.shapes`
  draws them) and ``position`` (centre within `POSITION_TOLERANCE` px on both axes); ``all`` when
  all four are right;
* ``iou``: colour-aware IoU of the rendered pixels: a pixel is in the intersection when it is
  painted in both images in nearly the same colour, in the union when it is painted in either;
* ``render_rate``, ``blank_rate`` (nothing painted, failures included) and ``distinct``: how many
  different drawings the policy made for the targets;
* image dependence: the same scores against a shuffled target list (``*_shuffled``): a policy that
  ignores its image scores the same on both.

`baselines` gives what a blank canvas and the best constant drawing score on the same targets (the
best of the targets' own drawings used for every target, chosen with hindsight per metric: an upper
bound on what any of those constant answers reaches).

**An oracle critic** (`oracle_critique`): the critique a perfect judge would write, the upper bound
any judge can reach in the reward comparison (`launch.ablate`). The policy's SVG is read exactly
(`parse_shape` and its shape elements), every attribute that differs from the target's becomes one
discrepancy in the wording and categories of the judge's training data, and the critique goes
through the same Visual-ERM reward as a judge's. Severity: the generator labels each edit by the
changed pixel area (`visual_erm.perturb.verify`); here the attributes of one drawing cannot be
separated in pixels, so each error carries the severity of the whole changed area between target
and rendering.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from defusedxml import ElementTree
from PIL import Image

from rl.task_sources import Reference, TaskSource
from visual_erm.perturb.verify import severity_from_area
from visual_erm.schema import Critique, Discrepancy
from visual_erm.tasks.shapes import Shape, shape_code

ATTRIBUTES = ("kind", "color", "size", "position")
POSITION_TOLERANCE = 2  # px, on each axis
PAINTED_BELOW = 240  # a pixel is painted when some channel is below this (white is 255)
SAME_COLOR_WITHIN = 64  # max |channel difference| for two painted pixels to count as the same colour
SHAPE_METRICS = ("iou", *(f"acc_{a}" for a in ATTRIBUTES), "acc_all")
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:px)?\s*$")


class ShapeSource(TaskSource):
    """Tasks `shape_code(seed)` for seeds in [start, stop), rendered at their own size."""

    name = "shapes"

    def __init__(self, start: int = 0, stop: int = 1000, canvas: int = 32, **options):
        super().__init__(**options)
        self.start, self.stop, self.canvas = int(start), int(stop), int(canvas)

    def __len__(self) -> int:
        return self.stop - self.start

    def _reference(self, index: int) -> Reference:
        seed = self.start + index
        return Reference(f"shapes/{seed}", "svg", shape_code(seed, self.canvas), where=f"shape seed {seed}")


def _number(element, name: str) -> float | None:
    match = _NUMBER.match(element.get(name, ""))
    return float(match.group(1)) if match else None


def parse_shape(code: str | None) -> Shape | None:
    """The first circle or square of an SVG as a `Shape` (None: no SVG, no such element, odd values)."""
    if not code:
        return None
    try:
        root = ElementTree.fromstring(code)
    except Exception:  # malformed or refused XML: the prediction names no shape
        return None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        fill = (element.get("fill") or "").strip().lower()
        if tag == "circle":
            cx, cy, r = (_number(element, k) for k in ("cx", "cy", "r"))
            if None not in (cx, cy, r):
                return Shape("circle", fill, int(round(2 * (r - 2))), int(round(cx)), int(round(cy)))
        elif tag == "rect":
            x, y, w, h = (_number(element, k) for k in ("x", "y", "width", "height"))
            if None not in (x, y, w, h):
                kind = "square" if w == h else "rectangle"
                return Shape(kind, fill, int(round(w)), int(round(x + w / 2)), int(round(y + h / 2)))
    return None


def attribute_hits(predicted: Shape | None, target: Shape) -> dict[str, float]:
    """1.0 / 0.0 per attribute and for all four (a missing shape gets none right)."""
    if predicted is None:
        hits = dict.fromkeys(ATTRIBUTES, 0.0)
    else:
        hits = {"kind": float(predicted.kind == target.kind), "color": float(predicted.color == target.color),
                "size": float(predicted.size == target.size),
                "position": float(abs(predicted.x - target.x) <= POSITION_TOLERANCE
                                  and abs(predicted.y - target.y) <= POSITION_TOLERANCE)}
    out = {f"acc_{name}": value for name, value in hits.items()}
    out["acc_all"] = float(all(hits.values()))
    return out


def _pixels(image: Image.Image | None, size: tuple[int, int]) -> np.ndarray:
    """int16 RGB array of `image` at `size`; a missing image is a white canvas."""
    if image is None:
        return np.full((size[1], size[0], 3), 255, np.int16)
    image = image.convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.NEAREST)
    return np.asarray(image, np.int16)


def color_iou(candidate: Image.Image | None, target: Image.Image) -> float:
    """Colour-aware IoU of the painted pixels (0 for a blank candidate; 1 for two blank images)."""
    ref = _pixels(target, target.size)
    cand = _pixels(candidate, target.size)
    painted_ref, painted_cand = ref.min(axis=-1) < PAINTED_BELOW, cand.min(axis=-1) < PAINTED_BELOW
    same = np.abs(ref - cand).max(axis=-1) <= SAME_COLOR_WITHIN
    union = (painted_ref | painted_cand).sum()
    if union == 0:
        return 1.0
    return float((painted_ref & painted_cand & same).sum() / union)


def _is_blank(image: Image.Image | None) -> bool:
    """Nothing painted: a failed render, or a canvas without a painted pixel."""
    return image is None or not (_pixels(image, image.size).min(axis=-1) < PAINTED_BELOW).any()


def _fingerprint(image: Image.Image | None) -> str:
    return "none" if image is None else hashlib.sha1(image.convert("RGB").tobytes()).hexdigest()


def _scores(shapes: Sequence[Shape | None], images: Sequence, targets: Sequence[Shape],
            target_images: Sequence[Image.Image]) -> dict[str, float]:
    rows = [{"iou": color_iou(image, target_image), **attribute_hits(shape, target)}
            for shape, image, target, target_image in zip(shapes, images, targets, target_images)]
    return {name: float(np.mean([r[name] for r in rows])) for name in SHAPE_METRICS}


def shuffled(n: int) -> np.ndarray:
    """A fixed derangement of n targets (each prediction is compared with another target)."""
    return np.roll(np.arange(n), n // 2 if n > 1 else 0)


def shape_scores(codes: Sequence[str | None], images: Sequence, target_codes: Sequence[str],
                 target_images: Sequence[Image.Image]) -> dict[str, float]:
    """Means over targets of `SHAPE_METRICS`, the same against shuffled targets (``*_shuffled``),
    ``render_rate``, ``blank_rate`` and ``distinct`` (different rendered drawings, a failed render
    counting as one)."""
    if not len(codes) == len(images) == len(target_codes) == len(target_images) or not codes:
        raise ValueError("shape_scores needs one code, image and target per prediction, at least one")
    targets = [parse_shape(code) for code in target_codes]
    if any(t is None for t in targets):
        raise ValueError("a target's reference code names no circle or square: not a shapes task")
    shapes = [parse_shape(code) for code in codes]
    out = _scores(shapes, images, targets, target_images)
    order = shuffled(len(codes))
    away = _scores(shapes, images, [targets[i] for i in order], [target_images[i] for i in order])
    out.update({f"{name}_shuffled": value for name, value in away.items()})
    out["render_rate"] = float(np.mean([image is not None for image in images]))
    out["blank_rate"] = float(np.mean([_is_blank(image) for image in images]))
    out["distinct"] = float(len({_fingerprint(image) for image in images}))
    return out


def baselines(target_codes: Sequence[str], target_images: Sequence[Image.Image]) -> dict[str, float]:
    """What a blank canvas and the best constant drawing score on these targets (`SHAPE_METRICS`).

    The constant candidates are the targets' own drawings, each answered for every target; the best
    is taken per metric (``constant/<metric>``), so no single constant need reach all of them."""
    n = len(target_codes)
    blank = _scores([None] * n, [None] * n, [parse_shape(c) for c in target_codes], target_images)
    out = {f"blank/{name}": value for name, value in blank.items()}
    targets = [parse_shape(c) for c in target_codes]
    best = dict.fromkeys(SHAPE_METRICS, 0.0)
    for shape, image in zip(targets, target_images):
        scores = _scores([shape] * n, [image] * n, targets, target_images)
        best = {name: max(best[name], scores[name]) for name in SHAPE_METRICS}
    out.update({f"constant/{name}": value for name, value in best.items()})
    return out


_SHAPE_TAGS = ("circle", "rect", "ellipse", "path", "polygon", "line", "polyline", "text")


def _shape_count(code: str) -> int:
    try:
        root = ElementTree.fromstring(code)
    except Exception:  # unreadable XML draws nothing we can count
        return 0
    return sum(element.tag.rsplit("}", 1)[-1] in _SHAPE_TAGS for element in root.iter())


def _direction(dx: int, dy: int) -> str:
    words = (["up"] if dy < 0 else ["down"] if dy > 0 else []) + (["left"] if dx < 0 else ["right"] if dx > 0 else [])
    return " and ".join(words)


def _changed_area(reference, candidate) -> float:
    ref = np.asarray(reference.convert("RGB"), np.int16)
    cand = np.asarray(candidate.convert("RGB").resize(reference.size), np.int16)
    return float((np.abs(ref - cand).max(axis=-1) > 24).mean())


def oracle_critique(reference_code: str, code: str | None, reference_image, image) -> Critique:
    """The discrepancies between the policy's drawing and the target, as the judge was taught to write them."""
    target = parse_shape(reference_code)
    if target is None:
        raise ValueError("the oracle critic reads shapes-task references only (a circle or a square)")
    severity = severity_from_area(_changed_area(reference_image, image)) if image is not None else 3
    location = f"the {target.name}"
    shape = parse_shape(code)
    if shape is None:
        return Critique([Discrepancy("structure_error", 3, location, "missing")])
    errors = []
    dx, dy = shape.x - target.x, shape.y - target.y
    if abs(dx) > POSITION_TOLERANCE or abs(dy) > POSITION_TOLERANCE:
        errors.append(Discrepancy("shape_error", severity, location, f"moved {_direction(dx, dy)}"))
    if shape.size != target.size:
        errors.append(Discrepancy("shape_error", severity, location,
                                  "too large" if shape.size > target.size else "too small"))
    if shape.color != target.color:
        errors.append(Discrepancy("style_error", severity, location, f"{shape.color} instead of {target.color}"))
    if shape.kind != target.kind:
        errors.append(Discrepancy("shape_error", severity, location, f"a {shape.kind} instead of a {target.kind}"))
    for _ in range(_shape_count(code) - 1):
        errors.append(Discrepancy("structure_error", severity, "extra shape", "an extra shape"))
    return Critique(errors)
