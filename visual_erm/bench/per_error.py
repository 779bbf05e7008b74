"""VC-RewardBench scored per error (mode ``"per_error"``): our variant of the official formulas.

Kept beside the official scorer (``visual_erm.bench.official``) because it never credits a partial
match more than half an error: the official P = TP / (TP + FP) leaves a partial match out of both
FP and FN, so a judge whose every answer is only "partial" scores official soft P = R = 1 (and hard
F1 1 when nothing else was said). Here the denominators are the error counts themselves.

Per item, predicted errors are matched one-to-one to reference errors (``visual_erm.matching``:
levels ``"yes"`` and ``"partial"``). Metrics, micro-averaged over all errors of all items:

* hard: TP = number of ``"yes"`` matches;  soft: TP = yes + 0.5 * partial (``partial_credit``);
* precision = TP / #predicted, recall = TP / #reference, F1 = 2PR / (P + R) (0 when P + R = 0);
  with no predicted errors precision is 1 if there are also no reference errors, else 0 (and
  symmetrically for recall): saying nothing scores nothing, agreeing on "nothing" scores 1;
* overall, per kind (chart / table / svg) and per error category (precision counts a match under
  the predicted error's category, recall under the reference error's; identical when categories
  must agree);
* ``severity_pearson``: Pearson r between predicted and reference severity sums per item (an
  invalid prediction sums to 0; items whose human severities were defaulted are left out); nan
  with a note when fewer than 2 items or either side is constant.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from visual_erm.bench.data import to_critique
from visual_erm.matching import MatchConfig, match_errors
from visual_erm.schema import KINDS, Discrepancy


@dataclasses.dataclass
class _Counts:
    """Error counts; ``*_p`` are matches credited to predicted errors, ``*_r`` to reference ones."""

    n_pred: int = 0
    n_ref: int = 0
    yes_p: int = 0
    partial_p: int = 0
    yes_r: int = 0
    partial_r: int = 0


def _ratio(tp: float, n: int, n_other: int) -> float:
    if n:
        return tp / n
    return 1.0 if n_other == 0 else 0.0


def _prf(tp_p: float, tp_r: float, n_pred: int, n_ref: int) -> dict[str, float]:
    p = _ratio(tp_p, n_pred, n_ref)
    r = _ratio(tp_r, n_ref, n_pred)
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f1}


def _block(c: _Counts, partial_credit: float) -> dict[str, Any]:
    return {
        "hard": _prf(c.yes_p, c.yes_r, c.n_pred, c.n_ref),
        "soft": _prf(
            c.yes_p + partial_credit * c.partial_p,
            c.yes_r + partial_credit * c.partial_r,
            c.n_pred,
            c.n_ref,
        ),
        "n_pred": c.n_pred,
        "n_ref": c.n_ref,
        "yes": c.yes_r,
        "partial": c.partial_r,
    }


def pearson(x: Sequence[float], y: Sequence[float]) -> tuple[float, str | None]:
    """Pearson r, or (nan, reason) when undefined (n < 2 or zero variance)."""
    if len(x) < 2:
        return math.nan, f"severity correlation needs >= 2 items, got {len(x)}"
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    da, db = a - a.mean(), b - b.mean()
    sa, sb = float(np.sqrt(np.sum(da * da))), float(np.sqrt(np.sum(db * db)))
    if sa == 0.0 or sb == 0.0:
        side = "predicted" if sa == 0.0 else "reference"
        return math.nan, f"severity correlation undefined: {side} severity sums are constant"
    return float(np.clip(np.sum(da * db) / (sa * sb), -1.0, 1.0)), None


def _kinds(kind: str | Sequence[str | None] | None, n: int) -> list[str | None]:
    kinds = [kind] * n if kind is None or isinstance(kind, str) else list(kind)
    if len(kinds) != n:
        raise ValueError(f"{n} items but {len(kinds)} kinds")
    for k in kinds:
        if k is not None and k not in KINDS:
            raise ValueError(f"unknown kind {k!r}; expected one of {KINDS}")
    return kinds


def _tally(
    table: dict[tuple, _Counts], key: Callable[[Discrepancy], tuple], preds, refs, matches
) -> None:
    """Count one item's errors and matches into ``table`` under ``key(error)`` buckets."""
    for e in preds:
        table.setdefault(key(e), _Counts()).n_pred += 1
    for e in refs:
        table.setdefault(key(e), _Counts()).n_ref += 1
    for m in matches:
        cp, cr = table[key(preds[m.pred_idx])], table[key(refs[m.ref_idx])]
        if m.level == "yes":
            cp.yes_p += 1
            cr.yes_r += 1
        else:
            cp.partial_p += 1
            cr.partial_r += 1


def evaluate(
    predictions: Sequence[Any],
    references: Sequence[Any],
    *,
    kind: str | Sequence[str | None] | None = None,
    config: MatchConfig = MatchConfig(),
    ids: Sequence[str] | None = None,
    severity_known: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Score aligned per-item predictions against references (see the module docstring).

    Each entry may be a ``Critique``, a list of ``Discrepancy``, decoded JSON or raw judge text.
    ``kind`` is one kind for all items or one per item (None: unknown, left out of ``by_kind``).
    ``ids`` name items in notes; ``severity_known[i] = False`` leaves item i out of the severity
    correlation. An invalid reference raises ValueError (references are data, not model output).
    """
    n = len(predictions)
    if len(references) != n:
        raise ValueError(f"{n} predictions but {len(references)} references")
    kinds = _kinds(kind, n)
    names = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    known = list(severity_known) if severity_known is not None else [True] * n
    if len(names) != n or len(known) != n:
        raise ValueError("ids and severity_known must have one entry per item")
    # Buckets: ("all",), ("category", c), ("kind", k), ("kind", k, c).
    table: dict[tuple, _Counts] = {("all",): _Counts()}
    sums: dict[str | None, tuple[list[float], list[float]]] = {}
    notes: list[str] = []
    n_invalid = 0
    for i in range(n):
        ref = to_critique(references[i], kinds[i])
        if not ref.valid:
            raise ValueError(f"reference for item {names[i]} is invalid: {'; '.join(ref.problems)}")
        pred = to_critique(predictions[i], kinds[i])
        n_invalid += not pred.valid
        preds, refs = pred.errors, ref.errors
        try:
            matches, match_notes = match_errors(preds, refs, kinds[i], config)
        except Exception as exc:
            matches, match_notes = [], [f"matcher failed: {type(exc).__name__}: {exc}"]
        notes.extend(f"item {names[i]}: {note}" for note in match_notes)
        keys: list[Callable[[Discrepancy], tuple]] = [
            lambda e: ("all",),
            lambda e: ("category", e.category),
        ]
        if kinds[i] is not None:
            k = kinds[i]
            table.setdefault(("kind", k), _Counts())  # kinds with no errors at all still report
            keys += [lambda e, k=k: ("kind", k), lambda e, k=k: ("kind", k, e.category)]
        for key in keys:
            _tally(table, key, preds, refs, matches)
        if known[i]:
            for group in (None, kinds[i]) if kinds[i] is not None else (None,):
                xs, ys = sums.setdefault(group, ([], []))
                xs.append(float(pred.total_severity))
                ys.append(float(ref.total_severity))
    credit = config.partial_credit
    r_all, note = pearson(*sums.get(None, ([], [])))
    if note:
        notes.append(note)
    kinds_out = {}
    for k in sorted(key[1] for key in table if key[0] == "kind" and len(key) == 2):
        r_k, note_k = pearson(*sums.get(k, ([], [])))
        if note_k:
            notes.append(f"{k}: {note_k}")
        per_category = {
            key[2]: c for key, c in table.items() if len(key) == 3 and key[:2] == ("kind", k)
        }
        kinds_out[k] = {
            **_block(table[("kind", k)], credit),
            "by_category": {c: _block(v, credit) for c, v in sorted(per_category.items())},
            "severity_pearson": r_k,
        }
    by_category = {key[1]: c for key, c in table.items() if key[0] == "category"}
    return {
        "mode": "per_error",
        "n_items": n,
        "n_invalid_predictions": n_invalid,
        "overall": _block(table[("all",)], credit),
        "by_kind": kinds_out,
        "by_category": {c: _block(v, credit) for c, v in sorted(by_category.items())},
        "severity_pearson": r_all,
        "notes": notes,
    }
