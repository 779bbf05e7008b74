"""The pixel check that makes injected labels exact.

An edit is kept only if rendering the reference with just that edit changes
pixels, and the change touches the labelled element's footprint (found by
rendering the element painted in a probe colour). Its severity comes from the
share of the image it changes. A pair with several edits also needs every
footprint still to differ in the fully edited render; a pair with no edit must
render identically.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage

from visual_erm.perturb.base import Perturbation
from visual_erm.schema import Discrepancy

PIXEL_TOLERANCE = 24  # max channel difference still counted as "same" (anti-aliasing)
MIN_CHANGED_PIXELS = 4
FOOTPRINT_DILATION = 4  # px: anti-aliased edges, strokes drawn around a shape
SEVERITY_AREA = (0.004, 0.04)  # changed-pixel share below which severity is 1, then 2; else 3


@dataclasses.dataclass(frozen=True)
class Verdict:
    """`discrepancies` (one per edit, in order) when the pair is kept, else `reason`."""

    discrepancies: tuple[Discrepancy, ...] | None
    reason: str = ""
    rejected_edits: int = 0
    reference_image: Any = None  # PIL RGB renders of the pair, when kept
    candidate_image: Any = None

    @property
    def kept(self) -> bool:
        return self.discrepancies is not None


def severity_from_area(fraction: float) -> int:
    low, high = SEVERITY_AREA
    return 1 if fraction < low else 2 if fraction < high else 3


def changed_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels that differ; images of different sizes are compared on a white canvas."""
    height, width = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])

    def on_canvas(image):
        canvas = np.full((height, width, 3), 255, np.int16)
        canvas[: image.shape[0], : image.shape[1]] = image
        return canvas

    return (np.abs(on_canvas(a) - on_canvas(b)) > PIXEL_TOLERANCE).any(axis=-1)


def _overlap(change: np.ndarray, footprint: np.ndarray) -> bool:
    height, width = max(change.shape[0], footprint.shape[0]), max(change.shape[1], footprint.shape[1])
    a = np.zeros((height, width), bool)
    b = np.zeros((height, width), bool)
    a[: change.shape[0], : change.shape[1]] = change
    b[: footprint.shape[0], : footprint.shape[1]] = footprint
    return bool((a & b).any())


def verify(pool, kind: str, reference: str, perturbation: Perturbation, *, size=None, timeout_s=None) -> Verdict:
    """Render everything the labels claim through `pool` and check each claim."""
    codes = {reference: None, perturbation.code: None}
    for edit in perturbation.edits:
        for code in (edit.single_code, *edit.footprint):
            codes.setdefault(code, None)
    order = list(codes)
    results = dict(zip(order, pool.map([kind] * len(order), order, size=size, timeout_s=timeout_s)))
    failed = [r.error for r in results.values() if not r.ok]
    if failed:
        return Verdict(None, f"render failed: {failed[0]}", rejected_edits=len(perturbation.edits))
    pixels = {code: np.asarray(result.image, dtype=np.int16) for code, result in results.items()}
    ref = pixels[reference]
    full_change = changed_mask(ref, pixels[perturbation.code])
    if not perturbation.edits:
        if full_change.any():
            return Verdict(None, "a zero-edit pair does not render identically")
        return Verdict((), reference_image=results[reference].image, candidate_image=results[perturbation.code].image)
    labels, problems = [], []
    for edit in perturbation.edits:
        change = changed_mask(ref, pixels[edit.single_code])
        footprint = ndimage.binary_dilation(
            changed_mask(*(pixels[c] for c in edit.footprint)), iterations=FOOTPRINT_DILATION
        )
        if change.sum() < MIN_CHANGED_PIXELS:
            problems.append(f"{edit.name}: no visible change")
        elif not footprint.any():
            problems.append(f"{edit.name}: labelled element has no pixels")
        elif not _overlap(change, footprint):
            problems.append(f"{edit.name}: change is not at '{edit.location}'")
        elif not _overlap(full_change, footprint):
            problems.append(f"{edit.name}: masked by another edit")
        else:
            severity = severity_from_area(float(change.sum()) / change.size)
            labels.append(Discrepancy(edit.category, severity, edit.location, edit.description))
    if problems:
        return Verdict(None, "; ".join(problems), rejected_edits=len(problems))
    return Verdict(
        tuple(labels), reference_image=results[reference].image, candidate_image=results[perturbation.code].image
    )
