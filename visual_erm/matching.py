"""One-to-one matching of predicted to reference discrepancies (VC-RewardBench).

Published matching rules (followed by the default matcher and required of any plug-in matcher):

* one-to-one: each predicted error matches at most one reference error and vice versa;
* ``"yes"``: the two describe the same error at the same place (same element, same fault);
* ``"partial"``: related but different in detail (right element, different fault; or right fault,
  imprecise place or value);
* anything else is no match. Soft metrics credit ``"partial"`` with 0.5 of a true positive.

The default matcher needs only the CPU and is deterministic. Its similarity of a predicted error
``p`` and a reference error ``r`` is::

    tok(s)   = set of normalised word tokens of s: NFKC + casefold, split into letter runs and
               numbers; numbers canonicalised ("1,000" -> "1000", "3.50" -> "3.5", "007" -> "7");
               a short list of English stop words removed
    F1(A, B) = 2 |A & B| / (|A| + |B|);  F1(empty, empty) = 1;  F1(A, empty) = 0
    sim(p,r) = w * F1(tok(p.location), tok(r.location)) + (1 - w) * F1(tok(p.desc), tok(r.desc))
               when both locations have tokens, else F1(tok(p.desc), tok(r.desc))  (w = 0.4)

Level: ``"yes"`` if sim >= 0.5, ``"partial"`` if sim >= 0.25, else none; with
``category="required"`` pairs of different categories never match. The assignment maximises
``credit(level) + 1e-3 * sim`` with ``scipy.optimize.linear_sum_assignment`` (soft true positives
first, similarity as tie-break), on errors put in a canonical order first, so shuffling the input
cannot change the result.

``LLMMatcher`` is the official evaluator's matching (InternLM/Visual-ERM ``evaluation.py``:
``build_llm_prompt`` + the cleaning in ``evaluate_one_item_with_llm``) as a plug-in: one prompt per
item with both error lists and the same rules (same type only; "yes" for the same concrete error,
"partial" for a vaguer description of it; one-to-one; no match rather than a wrong one), written
in our own words; the reply's matches are kept in order while they are in range, "yes"/"partial"
and one-to-one (``validate_matches``), as the official cleaning does. An unreadable reply raises,
and the scorer leaves that item out, as the official scorer does.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from visual_erm.schema import CATEGORIES, Discrepancy

LEVELS = ("yes", "partial")
CATEGORY_MODES = ("required", "ignored")
STOP_WORDS = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being it its this "
    "that these those should shown shows instead than as not has have there which".split()
)
_TOKEN = re.compile(r"(?P<num>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)|[^\W\d_]+")
_TIE_BREAK = 1e-3

# A plug-in matcher (e.g. an LLM following the rules above): indices into the two lists it is given.
Matcher = Callable[[Sequence[Discrepancy], Sequence[Discrepancy], "str | None"], list]


@dataclasses.dataclass(frozen=True)
class MatchConfig:
    """How predicted and reference errors are matched and credited (see the module docstring)."""

    location_weight: float = 0.4
    yes_threshold: float = 0.5
    partial_threshold: float = 0.25
    category: str = "required"
    partial_credit: float = 0.5
    matcher: Matcher | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORY_MODES:
            raise ValueError(f"category must be one of {CATEGORY_MODES}, got {self.category!r}")
        if not 0.0 <= self.location_weight <= 1.0:
            raise ValueError(f"location_weight must be in [0, 1], got {self.location_weight}")
        if not 0.0 < self.partial_threshold <= self.yes_threshold <= 1.0:
            raise ValueError("need 0 < partial_threshold <= yes_threshold <= 1")
        if not 0.0 <= self.partial_credit <= 1.0:
            raise ValueError(f"partial_credit must be in [0, 1], got {self.partial_credit}")
        if self.matcher is not None and not callable(self.matcher):
            raise TypeError("matcher must be callable")

    def credit(self, level: str) -> float:
        return 1.0 if level == "yes" else self.partial_credit if level == "partial" else 0.0


@dataclasses.dataclass(frozen=True)
class Match:
    """A matched pair; ``similarity`` is nan when a plug-in matcher decided."""

    pred_idx: int
    ref_idx: int
    level: str
    similarity: float = math.nan


def _canonical_number(text: str) -> str:
    value = float(text.replace(",", ""))
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def tokens(text: str) -> frozenset[str]:
    """Normalised word tokens of ``text`` (see the module docstring)."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    out = set()
    for m in _TOKEN.finditer(norm):
        tok = m.group()
        if m.group("num"):
            out.add(_canonical_number(tok))
        elif tok not in STOP_WORDS:
            out.add(tok)
    return frozenset(out)


def token_f1(a: frozenset[str], b: frozenset[str]) -> float:
    """Set F1 (Dice) of two token sets; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return 2.0 * len(a & b) / (len(a) + len(b))


def similarity(pred: Discrepancy, ref: Discrepancy, config: MatchConfig = MatchConfig()) -> float:
    """Text similarity in [0, 1] of two errors (location and description; category not included)."""
    return _similarity(_Tok(pred), _Tok(ref), config)


class _Tok:
    """Token sets of one error, computed once per error rather than once per pair."""

    __slots__ = ("category", "location", "description")

    def __init__(self, e: Discrepancy) -> None:
        self.category = e.category
        self.location = tokens(e.location)
        self.description = tokens(e.description)


def _similarity(p: _Tok, r: _Tok, config: MatchConfig) -> float:
    desc = token_f1(p.description, r.description)
    if p.location and r.location:
        w = config.location_weight
        return w * token_f1(p.location, r.location) + (1.0 - w) * desc
    return desc


def level_for(sim: float, config: MatchConfig) -> str | None:
    if sim >= config.yes_threshold:
        return "yes"
    if sim >= config.partial_threshold:
        return "partial"
    return None


def similarity_matrix(
    preds: Sequence[Discrepancy], refs: Sequence[Discrepancy], config: MatchConfig = MatchConfig()
) -> np.ndarray:
    """``sim[i, j]`` for predicted i and reference j; -1 where the category constraint forbids."""
    tp, tr = [_Tok(e) for e in preds], [_Tok(e) for e in refs]
    sim = np.full((len(tp), len(tr)), -1.0)
    for i, p in enumerate(tp):
        for j, r in enumerate(tr):
            if config.category == "required" and p.category != r.category:
                continue
            sim[i, j] = _similarity(p, r, config)
    return sim


def _canonical_order(errors: Sequence[Discrepancy]) -> list[int]:
    return sorted(range(len(errors)), key=lambda i: dataclasses.astuple(errors[i]))


def _similarity_matches(
    preds: Sequence[Discrepancy], refs: Sequence[Discrepancy], config: MatchConfig
) -> list[Match]:
    sim = similarity_matrix(preds, refs, config)
    weight = np.zeros_like(sim)
    for (i, j), s in np.ndenumerate(sim):
        level = level_for(s, config) if s >= 0 else None
        if level is not None:
            weight[i, j] = max(config.credit(level), _TIE_BREAK) + _TIE_BREAK * s
    rows, cols = linear_sum_assignment(weight, maximize=True)
    out = []
    for i, j in zip(rows.tolist(), cols.tolist()):
        if weight[i, j] > 0:
            out.append(Match(i, j, level_for(sim[i, j], config), float(sim[i, j])))
    return out


def validate_matches(raw: object, n_pred: int, n_ref: int) -> tuple[list[Match], list[str]]:
    """Check a plug-in matcher's output: indices in range, one-to-one, level yes/partial.

    Bad entries are dropped with a note (an LLM matcher may return anything); "no" levels are
    silently skipped.
    """
    notes: list[str] = []
    if not isinstance(raw, (list, tuple)):
        return [], [f"matcher returned {type(raw).__name__}, expected a list of (pred, ref, level)"]
    used_p, used_r, out = set(), set(), []
    for entry in raw:
        try:
            p, r, level = entry
        except (TypeError, ValueError):
            notes.append(f"matcher entry {entry!r:.60} is not (pred_idx, ref_idx, level)")
            continue
        level = level.strip().lower() if isinstance(level, str) else level
        if level in ("no", "none", None):
            continue
        ints = all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (p, r))
        if level not in LEVELS or not ints or not (0 <= p < n_pred and 0 <= r < n_ref):
            notes.append(f"matcher entry {entry!r:.60} is out of range or has a bad level")
            continue
        if p in used_p or r in used_r:
            notes.append(f"matcher entry {entry!r:.60} reuses an error (matching is one-to-one)")
            continue
        used_p.add(p)
        used_r.add(r)
        out.append(Match(int(p), int(r), level))
    return out, notes


def match_errors(
    preds: Sequence[Discrepancy],
    refs: Sequence[Discrepancy],
    kind: str | None = None,
    config: MatchConfig = MatchConfig(),
) -> tuple[list[Match], list[str]]:
    """Match one item's errors; returns (matches with indices into the inputs, notes).

    Both lists are put in canonical order before matching (also for a plug-in matcher), and the
    matches are sorted by reference index, so the result does not depend on input order.
    """
    if not preds or not refs:
        return [], []
    p_order, r_order = _canonical_order(preds), _canonical_order(refs)
    p_sorted = [preds[i] for i in p_order]
    r_sorted = [refs[j] for j in r_order]
    notes: list[str] = []
    if config.matcher is None:
        matches = _similarity_matches(p_sorted, r_sorted, config)
    else:
        raw = config.matcher(p_sorted, r_sorted, kind)
        matches, notes = validate_matches(raw, len(preds), len(refs))
    mapped = [Match(p_order[m.pred_idx], r_order[m.ref_idx], m.level, m.similarity) for m in matches]
    return sorted(mapped, key=lambda m: m.ref_idx), notes


_LLM_RULES = """\
You compare two lists of visual discrepancies found between a reference {kind} image and a
rendering of it: PREDICTED errors (written by a judge model) and REFERENCE errors (written by a
human). Pair each predicted error with the reference error that describes the same concrete error.

Error types allowed for {kind}: {types}.
1. Only errors of the same type may be paired; errors of different types are never paired.
2. "yes": both name the same concrete spot (the same element, cell, mark or shape) and the same
   fault, or nearly the same.
3. "partial": the predicted error is vaguer than the reference one but clearly names the same spot.
4. One-to-one: a predicted error pairs with at most one reference error and a reference error
   with at most one predicted error.
5. When in doubt, leave both unpaired: a missing pair is better than a wrong one.

Reply with a single JSON object and nothing else:
{{"matches": [{{"pred_id": <int>, "gt_id": <int>, "match_level": "yes" | "partial"}}]}}

PREDICTED errors:
{preds}

REFERENCE errors:
{refs}
"""


def llm_match_prompt(preds: Sequence[Discrepancy], refs: Sequence[Discrepancy], kind: str | None) -> str:
    """The matching request for one item (the official rules in our words; ids index the lists)."""

    def listing(errors: Sequence[Discrepancy], key: str) -> str:
        rows = [{key: i, "type": e.category, "severity": e.severity, "location": e.location,
                 "description": e.description} for i, e in enumerate(errors)]
        return json.dumps(rows, ensure_ascii=False, indent=1)

    types = ", ".join(CATEGORIES.get(kind, ())) if kind else "any"
    return _LLM_RULES.format(kind=kind or "", types=types, preds=listing(preds, "pred_id"),
                             refs=listing(refs, "gt_id"))


def parse_llm_matches(text: str) -> list[tuple]:
    """``(pred_id, gt_id, match_level)`` entries of a reply; ValueError when it holds no JSON object.

    Fences and prose around the outermost ``{...}`` are ignored; entries are checked later by
    ``validate_matches``.
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError(f"matcher reply holds no JSON object: {text[:80]!r}")
    reply = json.loads(text[start:end + 1])
    matches = reply.get("matches") if isinstance(reply, dict) else None
    if not isinstance(matches, list):
        raise ValueError("matcher reply has no 'matches' list")
    return [(m.get("pred_id"), m.get("gt_id"), m.get("match_level", "no")) if isinstance(m, dict) else m
            for m in matches]


@dataclasses.dataclass(frozen=True)
class LLMMatcher:
    """A plug-in matcher asking a language model, ``complete(prompt) -> reply``, per item.

    ``MatchConfig(matcher=LLMMatcher(complete))``; ``complete`` is the caller's client (no network
    here). Errors reach it in canonical order, so a deterministic model gives order-free results.
    """

    complete: Callable[[str], str]

    def __call__(self, preds: Sequence[Discrepancy], refs: Sequence[Discrepancy], kind: str | None) -> list:
        return parse_llm_matches(self.complete(llm_match_prompt(preds, refs, kind)))
