"""The learning rate an optimizer state is at, for logging: the run's schedule at its update count."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from policy.optimizer import learning_rate_schedule


def update_count(opt_state: Any) -> int:
    """Optimizer updates applied so far: the first `count` field of the optax state (Adam's)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(opt_state):
        if path and getattr(path[-1], "name", None) == "count":
            return int(np.asarray(leaf))
    raise ValueError("the optimizer state holds no update count")


def last_learning_rate(cfg: Mapping[str, Any], opt_state: Any) -> float:
    """The learning rate of the last update applied (the schedule at count - 1; its first value before any)."""
    return float(learning_rate_schedule(cfg)(max(update_count(opt_state) - 1, 0)))
