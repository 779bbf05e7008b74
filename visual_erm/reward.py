"""Critique -> scalar reward for GRPO.

Visual-ERM's reward is "how much is visibly wrong": the summed severity of the judge's discrepancies,
mapped to [0, 1] as ``clip(1 - total_severity / max_severity, 0, 1)``. A critique that could not be
parsed must still give a defined, *unattractive* reward (else the policy could learn to make the judge
fail), so it counts as ``invalid_severity`` (published default 25, i.e. reward 0.5 at the default
``max_severity`` 50 -- as bad as a heavily broken rendering).

The published table judge writes ``type`` instead of ``category``, no ``location``, and its RL reward
is minus the total severity, -4 on failure. ``schema.parse_critique`` already reads that form;
``table_severity_reward`` (or ``mode="table_severity"``) gives that mapping.
"""
from __future__ import annotations

import dataclasses
import math

from visual_erm.schema import CATEGORIES, Critique, parse_critique

MODES = ("scaled", "table_severity")


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """Reward mapping; ``scaled`` is the Visual-ERM default, ``table_severity`` the table judge's."""

    mode: str = "scaled"
    max_severity: float = 50.0
    invalid_severity: float = 25.0
    failure_value: float = -4.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not (self.max_severity > 0 and math.isfinite(self.max_severity)):
            raise ValueError(f"max_severity must be a positive finite number, got {self.max_severity}")
        if not (self.invalid_severity >= 0 and math.isfinite(self.invalid_severity)):
            raise ValueError(f"invalid_severity must be >= 0 and finite, got {self.invalid_severity}")
        if not math.isfinite(self.failure_value):
            raise ValueError(f"failure_value must be finite, got {self.failure_value}")


def _as_critique(critique: Critique | str, kind: str | None) -> Critique:
    """Accept raw judge text too, so callers can skip the parse step."""
    if isinstance(critique, Critique):
        return critique
    return parse_critique(critique, kind)


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in CATEGORIES:
        raise ValueError(f"unknown kind {kind!r}; expected one of {tuple(CATEGORIES)}")


def critique_reward(
    critique: Critique | str,
    kind: str | None = None,
    *,
    max_severity: float = 50.0,
    invalid_severity: float = 25.0,
) -> float:
    """``clip(1 - total_severity / max_severity, 0, 1)``; invalid critiques total ``invalid_severity``.

    ``critique`` may be raw judge text (parsed with ``kind``). Errors already in a ``Critique`` all
    count, whatever their category: the judge asserted them. ``kind`` must be a known kind or None.
    """
    config = RewardConfig(max_severity=max_severity, invalid_severity=invalid_severity)
    return reward_from_config(critique, kind, config)


def table_severity_reward(critique: Critique | str, failure_value: float = -4.0) -> float:
    """The published table judge's reward: ``-total_severity``, or ``failure_value`` if invalid."""
    config = RewardConfig(mode="table_severity", failure_value=failure_value)
    return reward_from_config(critique, "table", config)


def reward_from_config(critique: Critique | str, kind: str | None, config: RewardConfig) -> float:
    """One reward under ``config`` (see the module docstring for both modes)."""
    _check_kind(kind)
    c = _as_critique(critique, kind)
    if config.mode == "table_severity":
        return float(-c.total_severity) if c.valid else float(config.failure_value)
    total = c.total_severity if c.valid else config.invalid_severity
    return float(min(1.0, max(0.0, 1.0 - total / config.max_severity)))
