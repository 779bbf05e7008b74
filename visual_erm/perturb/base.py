"""An injected error: a structural edit of the code plus its exact label.

Each perturber turns a Task into an edited Task and a list of `Edit`s. An Edit
carries everything the pixel check (`visual_erm.perturb.verify`) needs to prove
its label: the reference with *only this edit* applied, and a footprint (two
codes whose rendered difference marks the labelled element, e.g. the element
painted in PROBE_COLOR). Severity is set by the pixel check from the visual
size of the edit, so it is never guessed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Edit:
    name: str  # injection type, e.g. "change_data_value"
    category: str  # one of visual_erm.schema.CATEGORIES[kind]
    location: str  # names the element: "title", "bar 3 of series 'Sales'", "row 2, column 'Price'"
    description: str  # plain English: what differs from the reference
    single_code: str  # the reference code with only this edit applied
    footprint: tuple[str, str]  # (code_a, code_b): their pixel difference marks the labelled element


@dataclasses.dataclass(frozen=True)
class Perturbation:
    code: str  # the reference code with every edit applied
    edits: tuple[Edit, ...]


class NotApplicable(Exception):
    """This edit type does not apply to this task (e.g. no legend to move)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """One chosen edit of a structured model (table model, SVG tree): its label, the element
    keys it claims (so edits on one pair never overlap), and how to apply it in place."""

    name: str
    category: str
    location: str
    description: str
    claims: frozenset
    apply: Callable[[Any], None]
    probe: tuple  # element addresses painted PROBE_COLOR to find the labelled element
    added: bool = False  # the element exists only after the edit: probe the edited version
