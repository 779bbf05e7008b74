"""Seeded generators of ground-truth code, one module per kind (chart, table, svg)."""
from __future__ import annotations

import importlib
import random

from visual_erm.tasks.base import KINDS, Task


def generate(kind: str, seed: int) -> Task:
    """The task of `kind` for `seed`: the same seed always gives the same task."""
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}; expected one of {KINDS}")
    module = importlib.import_module(f"visual_erm.tasks.{kind}")
    return module.generate(random.Random(f"{kind}:{seed}"), seed)


__all__ = ["KINDS", "Task", "generate"]
