"""An oracle critic for the toy shapes task: the critique a perfect judge would write.

The upper bound any judge can reach in the reward comparison (`launch.ablate`): the policy's SVG is
read exactly (`rl.shape_metrics.parse_shape` and its shape elements), every attribute that differs
from the target's becomes one discrepancy in the wording and categories of the judge's training data
(`visual_erm.shapes_data`), and the critique goes through the same Visual-ERM reward as a judge's.
Severity: the generator labels each edit by the changed pixel area (`perturb.verify`); here the
attributes of one drawing cannot be separated in pixels, so each error carries the severity of the
whole changed area between target and rendering.
"""
from __future__ import annotations

import numpy as np
from defusedxml import ElementTree

from rl.shape_metrics import POSITION_TOLERANCE, parse_shape
from visual_erm.perturb.verify import severity_from_area
from visual_erm.schema import Critique, Discrepancy

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
