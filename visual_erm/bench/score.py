"""VC-RewardBench scoring modes, one entry point: ``evaluate`` and ``evaluate_items``.

* ``"official"`` (default; ``visual_erm.bench.official``): the formulas of the official evaluator
  (InternLM/Visual-ERM ``evaluation/evaluation.py``), for numbers that sit beside the paper's.
* ``"per_error"`` (``visual_erm.bench.per_error``): precision and recall over error counts, so a
  partial match never counts as more than half an error; our training-time diagnostic.

Both match errors with the same ``MatchConfig`` (deterministic matcher unless a plug-in is given).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from visual_erm.bench import official, per_error
from visual_erm.bench.data import BenchItem, collect_predictions
from visual_erm.matching import MatchConfig
from visual_erm.schema import Critique

MODES = ("official", "per_error")


def evaluate(
    predictions: Sequence[Any],
    references: Sequence[Any],
    *,
    mode: str = "official",
    kind: str | Sequence[str | None] | None = None,
    config: MatchConfig = MatchConfig(),
    ids: Sequence[str] | None = None,
    severity_known: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Score aligned per-item predictions against references in ``mode`` (see the modules).

    ``severity_known`` (per_error only) leaves items with defaulted human severities out of the
    correlation; the official mode counts a missing severity as 0 instead.
    """
    if mode == "official":
        if severity_known is not None:
            raise ValueError("severity_known is a per_error option; official scoring counts missing severity as 0")
        return official.evaluate(predictions, references, kind=kind, config=config, ids=ids)
    if mode == "per_error":
        return per_error.evaluate(predictions, references, kind=kind, config=config, ids=ids,
                                  severity_known=severity_known)
    raise ValueError(f"unknown scoring mode {mode!r}; expected one of {MODES}")


def evaluate_items(
    items: Sequence[BenchItem],
    predictions: Mapping[str, Any] | str,
    *,
    mode: str = "official",
    config: MatchConfig = MatchConfig(),
) -> dict[str, Any]:
    """Score a judge on loaded items; ``predictions``: ``id -> output``, or a ``pred_json*`` key.

    A missing or unparsable prediction is scored as an empty (invalid) critique and reported in
    ``item_errors`` with the item's id; nothing here raises for bad model output. The official mode
    reads the raw outputs and the items' raw ``human_errors`` (its own type and severity rules).
    """
    if isinstance(predictions, str):
        key = predictions
        raw = {item.id: item.judge_outputs[key] for item in items if key in item.judge_outputs}
        critiques, errors = collect_predictions(items, raw, f"{key!r} output")
    else:
        raw = predictions
        critiques, errors = collect_predictions(items, raw)
    kinds = [item.kind for item in items]
    ids = [item.id for item in items]
    if mode == "official":
        result = evaluate([raw.get(item.id) for item in items],
                          [item.reference if item.human_errors is None else item.human_errors for item in items],
                          mode=mode, kind=kinds, config=config, ids=ids)
    else:
        result = evaluate([critiques.get(item.id, Critique.invalid("no prediction")) for item in items],
                          [item.reference for item in items], mode=mode, kind=kinds, config=config, ids=ids,
                          severity_known=[item.severity_known for item in items])
    result["item_errors"] = [str(e) for e in errors]
    return result
