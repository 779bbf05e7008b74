"""VC-RewardBench scored as the official evaluator scores it (mode ``"official"``, the default).

Reproduces InternLM/Visual-ERM ``evaluation/evaluation.py``: ``evaluate_one_item_with_llm`` per
item, then ``evaluate_dataset``'s ``aggregate_metrics`` and ``calc_corr_for_rows`` over items. Our
own code, the same formulas:

* error filtering, per item by its kind (``ALLOWED_TYPES`` = the official ``CATEGORY_ERROR_TYPES``):
  a reference (human) error is kept when its ``type`` value is allowed; a predicted error when its
  ``type``, or else its ``category``, value is (``get_err_type``); exact strings. A dropped error
  leaves its item in. References given as ``Discrepancy`` objects are typed by ``category``.
* severity: ``float(error["severity"])``; 0 when missing or unreadable.
* matching: one-to-one "yes"/"partial" pairs from ``visual_erm.matching`` (the deterministic
  matcher by default, or a plug-in such as ``matching.LLMMatcher`` following the official rules).
* per item: hard TP = #yes, soft TP = #yes + 0.5 #partial; FP = unmatched predicted errors, FN =
  unmatched reference errors (a partial match is neither). Per error type t: TP from the matches
  whose *predicted* error has type t; FP and FN from the unmatched errors of type t.
* summed over items (overall, per kind, per type): P = TP / (TP + FP), R = TP / (TP + FN), 0 when
  a denominator is 0. Hard F1 = 2PR / (P + R), and 1 when TP = FP = FN = 0 (``f1_score``); soft
  F1 = 2PR / (P + R) and 0 when P + R = 0 (the official soft F1 has no empty-set rule). Overall
  per-type blocks sum the items whose kind allows the type.
* severity: Pearson r of predicted against reference severity sums per item: per type within a
  kind, per kind in total, and overall in total; nan with a note for fewer than 2 items or a
  constant side (``pearson_corr``).
* items: an item without a kind is left out (the official skips unknown categories); an item
  whose plug-in matcher raises is left out and named in ``failed_items`` (the official's failed
  items). An unreadable prediction counts as no errors (the official's ``pred_json: None``); raw
  text is decoded by ``schema.parse_critique`` first (the official pipeline stores decoded JSON).

By design, FP and FN are always the errors left out of the cleaned matches (the official takes
an LLM's own ``unmatched_*`` lists when they are non-empty, which may disagree with its matches);
kinds with no item are left out of ``by_kind`` (the official reports them with hard F1 1).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from visual_erm.bench.data import to_critique
from visual_erm.bench.per_error import pearson
from visual_erm.matching import MatchConfig, match_errors
from visual_erm.schema import CATEGORIES, SEVERITY_MAX, SEVERITY_MIN, Critique, Discrepancy, parse_critique

ALLOWED_TYPES: dict[str, tuple[str, ...]] = CATEGORIES  # the official CATEGORY_ERROR_TYPES, same lists


@dataclasses.dataclass(frozen=True)
class OfficialError:
    """One error as the official scorer sees it: its type string and a float severity."""

    type: str
    severity: float
    location: str = ""
    description: str = ""

    def for_matcher(self) -> Discrepancy:
        """The matcher's input type; severity (unused by matching) clamped to the schema's 1..3."""
        s = self.severity
        severity = SEVERITY_MIN if not math.isfinite(s) else max(SEVERITY_MIN, min(SEVERITY_MAX, math.floor(s + 0.5)))
        return Discrepancy(self.type, severity, self.location, self.description)


def official_severity(value: Any) -> float:
    """``float(value)``, 0 when missing or unreadable (the official ``sum_severity_by_type``)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _entries(value: Any, kind: str) -> list:
    """The error entries of a judge output or reference: dicts or Discrepancy objects."""
    if isinstance(value, Critique):
        return list(value.errors)
    if isinstance(value, str):
        return list(parse_critique(value, kind).errors)
    if isinstance(value, Mapping):
        errors = value.get("errors")
        return list(errors) if isinstance(errors, list) else []
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def official_errors(value: Any, kind: str, *, reference: bool) -> tuple[list[OfficialError], int]:
    """(errors kept for ``kind``, number dropped); references are typed by ``type`` only."""
    allowed = ALLOWED_TYPES[kind]
    kept: list[OfficialError] = []
    dropped = 0
    for entry in _entries(value, kind):
        if isinstance(entry, Discrepancy):
            error_type, severity = entry.category, float(entry.severity)
            location, description = entry.location, entry.description
        elif isinstance(entry, Mapping):
            error_type = entry.get("type") if reference else entry.get("type") or entry.get("category")
            severity = official_severity(entry.get("severity"))
            location, description = _text(entry.get("location")), _text(entry.get("description"))
        else:
            dropped += 1
            continue
        if not isinstance(error_type, str) or error_type not in allowed:
            dropped += 1
            continue
        kept.append(OfficialError(error_type, severity, location, description))
    return kept, dropped


@dataclasses.dataclass
class Tally:
    """Summed counts: hard and soft true positives, false positives, false negatives."""

    tp_hard: int = 0
    tp_soft: float = 0.0
    fp: int = 0
    fn: int = 0

    def add(self, other: Tally) -> None:
        self.tp_hard += other.tp_hard
        self.tp_soft += other.tp_soft
        self.fp += other.fp
        self.fn += other.fn


def _div(a: float, b: float) -> float:
    return a / b if b != 0 else 0.0


def _prf(tp: float, fp: int, fn: int, *, empty_is_perfect: bool) -> dict[str, float]:
    p, r = _div(tp, tp + fp), _div(tp, tp + fn)
    f1 = 1.0 if empty_is_perfect and tp == fp == fn == 0 else _div(2 * p * r, p + r)
    return {"precision": p, "recall": r, "f1": f1}


def block(t: Tally) -> dict[str, Any]:
    """Hard and soft P/R/F1 of summed counts (hard F1 of nothing-vs-nothing is 1, soft F1 is 0)."""
    return {
        "hard": _prf(t.tp_hard, t.fp, t.fn, empty_is_perfect=True),
        "soft": _prf(t.tp_soft, t.fp, t.fn, empty_is_perfect=False),
        "tp_hard": t.tp_hard, "tp_soft": t.tp_soft, "fp": t.fp, "fn": t.fn,
    }  # fmt: skip


@dataclasses.dataclass
class ItemScore:
    """One item's counts (overall and per allowed type) and severity sums per type."""

    kind: str
    overall: Tally
    by_type: dict[str, Tally]
    severity_pred: dict[str, float]
    severity_ref: dict[str, float]


def score_item(preds: list[OfficialError], refs: list[OfficialError], kind: str,
               config: MatchConfig = MatchConfig()) -> tuple[ItemScore, list[str]]:
    """One item's official counts; raises whatever a plug-in matcher raises."""
    matches, notes = match_errors([e.for_matcher() for e in preds], [e.for_matcher() for e in refs], kind, config)
    types = ALLOWED_TYPES[kind]
    by_type = {t: Tally() for t in types}
    overall = Tally()
    for m in matches:
        hard, soft = (1, 1.0) if m.level == "yes" else (0, 0.5)
        for tally in (overall, by_type[preds[m.pred_idx].type]):
            tally.tp_hard += hard
            tally.tp_soft += soft
    matched_p, matched_r = {m.pred_idx for m in matches}, {m.ref_idx for m in matches}
    for i, e in enumerate(preds):
        if i not in matched_p:
            overall.fp += 1
            by_type[e.type].fp += 1
    for j, e in enumerate(refs):
        if j not in matched_r:
            overall.fn += 1
            by_type[e.type].fn += 1

    def sums(errors: list[OfficialError]) -> dict[str, float]:
        out = {t: 0.0 for t in types}
        for e in errors:
            out[e.type] += e.severity
        return out

    return ItemScore(kind, overall, by_type, sums(preds), sums(refs)), notes


def _correlation(xs: list[float], ys: list[float], label: str, notes: list[str]) -> float:
    r, note = pearson(xs, ys)
    if note:
        notes.append(f"{label}: {note}")
    return r


def aggregate(rows: Sequence[ItemScore], notes: list[str]) -> dict[str, Any]:
    """Summed blocks and severity correlations over scored items (``aggregate_metrics``)."""
    total = Tally()
    for row in rows:
        total.add(row.overall)
    by_kind: dict[str, Any] = {}
    for kind in sorted({row.kind for row in rows}):
        mine = [row for row in rows if row.kind == kind]
        kind_total, per_type = Tally(), {t: Tally() for t in ALLOWED_TYPES[kind]}
        for row in mine:
            kind_total.add(row.overall)
            for t, tally in row.by_type.items():
                per_type[t].add(tally)
        by_kind[kind] = {
            **block(kind_total),
            "by_type": {t: block(v) for t, v in per_type.items()},
            "severity_pearson": _correlation([sum(r.severity_pred.values()) for r in mine],
                                             [sum(r.severity_ref.values()) for r in mine], kind, notes),
            "severity_pearson_by_type": {
                t: _correlation([r.severity_pred[t] for r in mine], [r.severity_ref[t] for r in mine],
                                f"{kind}/{t}", notes)
                for t in ALLOWED_TYPES[kind]
            },
        }
    by_type: dict[str, Tally] = {}
    for row in rows:
        for t, tally in row.by_type.items():
            by_type.setdefault(t, Tally()).add(tally)
    return {
        "overall": block(total),
        "by_kind": by_kind,
        "by_type": {t: block(v) for t, v in sorted(by_type.items())},
        "severity_pearson": _correlation([sum(r.severity_pred.values()) for r in rows],
                                         [sum(r.severity_ref.values()) for r in rows], "overall", notes),
    }


def evaluate(
    predictions: Sequence[Any],
    references: Sequence[Any],
    *,
    kind: str | Sequence[str | None] | None,
    config: MatchConfig = MatchConfig(),
    ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Official VC-RewardBench metrics of aligned per-item predictions and references.

    Entries may be decoded JSON (``{"errors": [...]}`` or a list of error dicts), a ``Critique``,
    a list of ``Discrepancy`` or raw judge text. ``kind``: one for all items or one per item
    (required: the allowed error types depend on it; a None entry leaves that item out).
    """
    n = len(predictions)
    if len(references) != n:
        raise ValueError(f"{n} predictions but {len(references)} references")
    if kind is None:
        raise ValueError("official scoring needs each item's kind (its allowed error types); "
                         "pass kind=..., or use mode='per_error'")
    kinds = [kind] * n if isinstance(kind, str) else list(kind)
    names = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    if len(kinds) != n or len(names) != n:
        raise ValueError("kind and ids must have one entry per item")
    for k in kinds:
        if k is not None and k not in ALLOWED_TYPES:
            raise ValueError(f"unknown kind {k!r}; expected one of {tuple(ALLOWED_TYPES)}")
    rows: list[ItemScore] = []
    notes: list[str] = []
    failed: list[str] = []
    dropped_ref = dropped_pred = n_invalid = 0
    for i in range(n):
        if kinds[i] is None:
            notes.append(f"item {names[i]}: no kind; left out (official scoring)")
            continue
        refs, d_ref = official_errors(references[i], kinds[i], reference=True)
        preds, d_pred = official_errors(predictions[i], kinds[i], reference=False)
        dropped_ref, dropped_pred = dropped_ref + d_ref, dropped_pred + d_pred
        n_invalid += not to_critique(predictions[i], kinds[i]).valid
        try:
            row, match_notes = score_item(preds, refs, kinds[i], config)
        except Exception as exc:
            failed.append(names[i])
            notes.append(f"item {names[i]}: matcher failed ({type(exc).__name__}: {exc}); left out")
            continue
        notes.extend(f"item {names[i]}: {note}" for note in match_notes)
        rows.append(row)
    return {
        "mode": "official",
        "n_items": len(rows),
        "n_invalid_predictions": n_invalid,
        "n_dropped_reference_errors": dropped_ref,
        "n_dropped_predicted_errors": dropped_pred,
        **aggregate(rows, notes),
        "failed_items": failed,
        "notes": notes,
    }
