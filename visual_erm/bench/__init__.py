"""VC-RewardBench: how well a judge finds the discrepancies humans labelled.

The public face of the benchmark package (``python -m visual_erm.bench`` runs ``visual_erm.bench.cli``):

* loading a local copy: ``visual_erm.bench.data`` (``load_bench``, ``BenchItem``, ...);
* scoring: ``evaluate`` / ``evaluate_items`` (``visual_erm.bench.score``) in mode ``"official"``
  (default: the official evaluator's formulas, ``visual_erm.bench.official``) or ``"per_error"``
  (``visual_erm.bench.per_error``);
* matching predicted to reference errors: ``visual_erm.matching`` (deterministic by default; an
  LLM following the official rules plugs in as ``MatchConfig(matcher=LLMMatcher(...))``).
"""
from __future__ import annotations

from visual_erm.bench.data import (  # noqa: F401 - re-exported public API
    BenchData,
    BenchItem,
    BenchItemError,
    collect_predictions,
    judge_keys,
    judge_predictions,
    load_bench,
    load_items,
    to_critique,
)
from visual_erm.bench.per_error import pearson  # noqa: F401 - re-exported public API
from visual_erm.bench.score import MODES, evaluate, evaluate_items  # noqa: F401 - re-exported public API
