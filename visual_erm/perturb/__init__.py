"""Error injection with exact labels: structural edits per kind, checked in pixels."""
from __future__ import annotations

import importlib
import random

from visual_erm.perturb.base import Edit, NotApplicable, Perturbation
from visual_erm.tasks.base import Task


def perturb(task: Task, rng: random.Random, n_edits: int) -> Perturbation:
    """Apply `n_edits` distinct edits (0..4) to `task` with the perturber of its kind."""
    return importlib.import_module(f"visual_erm.perturb.{task.kind}").perturb(task, rng, n_edits)


__all__ = ["Edit", "NotApplicable", "Perturbation", "perturb"]
