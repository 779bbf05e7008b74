"""What a task is: ground-truth code of one kind, made reproducibly from a seed.

Generators return the structured `spec` the code was printed from, so error
injection (`visual_erm.perturb`) can edit structure, never text.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from render.request import KINDS  # noqa: F401 -- the one definition; visual_erm.tasks re-exports it

PROBE_COLOR = "#ff00ff"  # a task's printer paints a labelled element in it to find its pixels


@dataclasses.dataclass(frozen=True)
class Task:
    kind: str  # "chart" | "table" | "svg"
    code: str  # ground-truth code (matplotlib script, Markdown/HTML table, SVG source)
    source: str  # generator name, e.g. "chart/bar", "svg/icon:bootstrap/alarm.svg"
    seed: int
    spec: Any = None  # the structured model `code` was printed from


Generator = Callable[[random.Random, int], Task]  # (rng, seed) -> Task
