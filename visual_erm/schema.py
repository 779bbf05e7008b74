"""The critique schema Visual-ERM writes, and a parser for what models actually emit.

A critique is the JSON object ``{"errors": [{"category", "severity", "location", "description"}]}``:
every visual discrepancy between the reference image and the rendered candidate, typed by a
per-kind category and graded 1 (minor) .. 3 (major). The reward (``visual_erm.reward``) and the
VC-RewardBench scorer (``visual_erm.bench``) read critiques only through this module.

``parse_critique`` never raises: RL rollouts must get a defined reward for any judge output. It keeps
what it can coerce and records what it dropped in ``Critique.problems``.

Decisions, so callers know what to expect:

* ``valid`` means an object with an ``errors`` list (or a bare list of error objects) was found;
  ``{"errors": []}`` is a valid "no discrepancy" critique. Validity ignores dropped items.
* Single-quoted, Python-literal pseudo JSON is *not* accepted: the judge is trained to emit JSON,
  and accepting literals would need ``ast.literal_eval`` with its own nesting limits. Trailing commas
  are forgiven (cheap, string-aware, linear).
* ``type`` stands for ``category`` (the published table judge writes it); ``location`` and
  ``description`` are optional (empty string). A missing severity drops the item unless the caller
  passes ``default_severity`` (human references may omit it).
* Categories are case/space-insensitive (``"Data Error"`` -> ``data_error``, ``"data"`` ->
  ``data_error``); with ``kind`` given, categories outside ``CATEGORIES[kind]`` are dropped.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from render.request import KINDS
from visual_erm.json_extract import decode_whole, fenced_blocks, iter_json_values, strip_think

CATEGORIES: dict[str, tuple[str, ...]] = {
    "chart": ("structure_error", "data_error", "text_error", "style_error"),
    "table": ("layout_error", "text_error", "numeric_error"),
    "svg": ("structure_error", "shape_error", "style_error", "text_symbol_error"),
}
if tuple(CATEGORIES) != KINDS:  # the task kinds are render.KINDS; each has its categories
    raise ImportError(f"CATEGORIES covers {tuple(CATEGORIES)}, the task kinds are {KINDS}")
ALL_CATEGORIES: frozenset[str] = frozenset(c for cats in CATEGORIES.values() for c in cats)
SEVERITY_MIN, SEVERITY_MAX = 1, 3
SEVERITY_WORDS = {
    "minor": 1, "low": 1, "small": 1, "slight": 1,
    "moderate": 2, "medium": 2, "mid": 2, "intermediate": 2,
    "major": 3, "high": 3, "severe": 3, "critical": 3, "serious": 3,
}  # fmt: skip
MAX_PROBLEMS = 32  # notes kept per critique; the rest are counted

_CATEGORY_KEYS = ("category", "type", "error_type", "error_category")
_SEVERITY_KEYS = ("severity", "severity_level", "level")
_LOCATION_KEYS = ("location", "position", "where", "element")
_DESCRIPTION_KEYS = ("description", "desc", "detail", "details", "explanation", "message")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LEADING_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))")
_WORD = re.compile(r"[a-z]+")
_ERRORS_ANCHOR = re.compile(r'\{\s*"errors"\s*:', re.IGNORECASE)
MAX_ANCHORS = 4  # restarts of the scanner; each is one linear pass


@dataclasses.dataclass(frozen=True)
class Discrepancy:
    """One visual difference: what kind, how bad (1..3), where, and what exactly."""

    category: str
    severity: int
    location: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.category, str) or not self.category:
            raise ValueError(f"category must be a non-empty str, got {self.category!r}")
        if isinstance(self.severity, bool) or not isinstance(self.severity, int):
            raise TypeError(f"severity must be an int, got {self.severity!r}")
        if not SEVERITY_MIN <= self.severity <= SEVERITY_MAX:
            raise ValueError(f"severity must be in {SEVERITY_MIN}..{SEVERITY_MAX}, got {self.severity}")
        if not isinstance(self.location, str) or not isinstance(self.description, str):
            raise TypeError("location and description must be str")

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "severity": self.severity,
            "location": self.location,
            "description": self.description,
        }


@dataclasses.dataclass(frozen=True)
class Critique:
    """A judge's list of discrepancies plus parse metadata (``valid``, ``problems``).

    ``to_dict``/``to_json`` give the model-facing form ``{"errors": [...]}`` only; the metadata says
    how the critique was obtained and is not part of what a judge writes.
    """

    errors: tuple[Discrepancy, ...] = ()
    valid: bool = True
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", tuple(self.errors))
        object.__setattr__(self, "problems", tuple(self.problems))
        for e in self.errors:
            if not isinstance(e, Discrepancy):
                raise TypeError(f"errors must hold Discrepancy, got {type(e).__name__}")

    @classmethod
    def invalid(cls, *problems: str) -> Critique:
        return cls(errors=(), valid=False, problems=problems)

    @property
    def total_severity(self) -> int:
        return sum(e.severity for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {"errors": [e.to_dict() for e in self.errors]}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


class Notes:
    """Bounded list of problems: hostile input must not produce unbounded metadata."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.overflow = 0

    def add(self, note: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(note)
        else:
            self.overflow += 1

    def result(self) -> tuple[str, ...]:
        extra = [f"... and {self.overflow} more problems"] if self.overflow else []
        return tuple(self.items + extra)


def normalize_category(name: str, kind: str | None = None) -> str:
    """``"Data Error"``/``"data-error"``/``"data"`` -> ``data_error``; '' when nothing is left.

    The ``_error`` suffix is added when that yields a known category (of ``kind``, or of any kind).
    """
    norm = _NON_ALNUM.sub("_", name.lower()).strip("_")
    if not norm:
        return ""
    known = CATEGORIES.get(kind, ()) if kind is not None else ALL_CATEGORIES
    if norm not in known and f"{norm}_error" in known:
        return f"{norm}_error"
    return norm


def coerce_severity(value: Any) -> int | None:
    """Severity as an int in 1..3 (clamped), or None when it cannot be read.

    Accepts ints, floats (rounded half up), numeric strings (``"2"``, ``"2.0"``, ``"3 (major)"``) and
    words (``"major"``, ``"Moderate"``). Booleans and NaN are rejected.
    """
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, (int, float)):
        number = float(value) if isinstance(value, float) else None
        if number is None:
            return max(SEVERITY_MIN, min(SEVERITY_MAX, value))
    elif isinstance(value, str):
        text = value[:64].lower()
        m = _LEADING_NUMBER.match(text)
        if m:
            number = float(m.group(1))
        else:
            words = [SEVERITY_WORDS[w] for w in _WORD.findall(text) if w in SEVERITY_WORDS]
            return words[0] if words else None
    if number is None or math.isnan(number):
        return None
    if math.isinf(number):
        return SEVERITY_MAX if number > 0 else SEVERITY_MIN
    return max(SEVERITY_MIN, min(SEVERITY_MAX, math.floor(number + 0.5)))


def _lower_keys(d: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(k, str):
            out.setdefault(k.strip().lower(), v)
    return out


def _first(d: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def severity_given(item: Mapping[Any, Any]) -> bool:
    """Whether an error object carries a (non-null) severity; loaders flag defaulted ones."""
    return _first(_lower_keys(item), _SEVERITY_KEYS) is not None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def coerce_discrepancy(
    item: Any, kind: str | None, notes: Notes, index: int, default_severity: int | None = None
) -> Discrepancy | None:
    """One error object -> Discrepancy, or None (with a note) when it cannot be coerced."""
    if isinstance(item, Discrepancy):
        item = item.to_dict()
    if not isinstance(item, Mapping):
        notes.add(f"error {index}: not an object ({type(item).__name__})")
        return None
    d = _lower_keys(item)
    raw_category = _first(d, _CATEGORY_KEYS)
    if not isinstance(raw_category, str) or not normalize_category(raw_category, kind):
        notes.add(f"error {index}: missing or unreadable category")
        return None
    category = normalize_category(raw_category, kind)
    if kind is not None and category not in CATEGORIES[kind]:
        notes.add(f"error {index}: category {category!r} is not a {kind} category; dropped")
        return None
    raw_severity = _first(d, _SEVERITY_KEYS)
    if raw_severity is None and default_severity is not None:
        severity: int | None = default_severity
    else:
        severity = coerce_severity(raw_severity)
    if severity is None:
        notes.add(f"error {index}: missing or unreadable severity {_as_text(raw_severity)[:40]!r}")
        return None
    if isinstance(raw_severity, (int, float)) and not isinstance(raw_severity, bool):
        if raw_severity != severity:
            notes.add(f"error {index}: severity {raw_severity!r} coerced to {severity}")
    location = _as_text(_first(d, _LOCATION_KEYS))
    description = _as_text(_first(d, _DESCRIPTION_KEYS))
    return Discrepancy(category, severity, location, description)


def _find_errors(value: Any, max_nodes: int = 10_000) -> tuple[list[Any] | None, bool]:
    """Breadth-first search of a decoded value for ``{"errors": [...]}``.

    Returns (items, is_object_form). A top-level list of objects counts as a bare errors list
    (is_object_form False) when no ``errors`` key exists anywhere.
    """
    queue: deque[Any] = deque([value])
    seen = 0
    while queue and seen < max_nodes:
        node = queue.popleft()
        seen += 1
        if isinstance(node, dict):
            d = _lower_keys(node)
            errors = d.get("errors")
            if isinstance(errors, list):
                return errors, True
            if isinstance(errors, dict):
                return [errors], True
            queue.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            queue.extend(v for v in node if isinstance(v, (dict, list)))
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value, False
    return None, False


def _looks_like_errors(items: list[Any]) -> bool:
    """A list embedded in prose counts as errors only if some object in it names a category.

    Otherwise ``[]`` or ``[{"x": 1}]`` in surrounding prose (or inside single-quoted pseudo JSON)
    would read as a valid "no discrepancy" critique.
    """
    return any(
        isinstance(v, dict) and _first(_lower_keys(v), _CATEGORY_KEYS) is not None for v in items
    )


def coerce_critique(
    obj: Any, kind: str | None = None, *, default_severity: int | None = None
) -> Critique:
    """Decoded JSON (dict with ``errors``, or a bare list of error objects) -> Critique.

    Never raises. Used by ``parse_critique`` and by loaders that already hold decoded JSON.
    """
    try:
        if kind is not None and kind not in CATEGORIES:
            return Critique.invalid(f"unknown kind {kind!r}; expected one of {KINDS}")
        if isinstance(obj, Critique):
            obj = obj.to_dict()
        if isinstance(obj, (list, tuple)):
            obj = [e.to_dict() if isinstance(e, Discrepancy) else e for e in obj]
        items, _ = _find_errors(obj)
        if items is None:
            return Critique.invalid("no errors list found")
        return _coerce_items(items, kind, Notes(), default_severity)
    except Exception as exc:
        return Critique.invalid(f"internal error while coercing: {type(exc).__name__}: {exc}")


def _coerce_items(
    items: list[Any], kind: str | None, notes: Notes, default_severity: int | None
) -> Critique:
    errors = []
    for i, item in enumerate(items):
        e = coerce_discrepancy(item, kind, notes, i, default_severity)
        if e is not None:
            errors.append(e)
    return Critique(errors=tuple(errors), valid=True, problems=notes.result())


def parse_critique(
    text: Any, kind: str | None = None, *, default_severity: int | None = None
) -> Critique:
    """Model output text -> Critique. Never raises; linear time in ``len(text)``.

    Order: (1) the whole text as one JSON document (exact round trip of ``to_json``, even when a
    description mentions ``<think>`` or fences); (2) drop ``<think>`` blocks; (3) JSON values inside
    code fences, then in the whole remaining text, taking the first object with an ``errors`` list;
    (4) if none, rescan from the first few literal ``{"errors":`` openings (prose quotes can
    desynchronise the scanner); (5) else a bare list of error objects: one that is the whole answer
    (a fenced block or the text), or one in prose whose objects name a category.
    """
    if not isinstance(text, str):
        return Critique.invalid(f"expected str, got {type(text).__name__}")
    try:
        if kind is not None and kind not in CATEGORIES:
            return Critique.invalid(f"unknown kind {kind!r}; expected one of {KINDS}")
        notes = Notes()
        ok, value = decode_whole(text)
        if ok:
            items, object_form = _find_errors(value)
            if items is not None and object_form:
                return _coerce_items(items, kind, notes, default_severity)
        body, think_notes = strip_think(text)
        for note in think_notes:
            notes.add(note)
        bare: list[Any] | None = None
        for source in [*fenced_blocks(body), body]:
            whole_ok, whole = decode_whole(source)
            if bare is None and whole_ok and isinstance(whole, list):
                bare = _find_errors(whole)[0]
            for value in iter_json_values(source):
                items, object_form = _find_errors(value)
                if items is None:
                    continue
                if object_form:
                    return _coerce_items(items, kind, notes, default_severity)
                if bare is None and _looks_like_errors(items):
                    bare = items
        # Stray quotes or braces in prose can desynchronise the scanner; restart it at the first
        # few literal '{"errors":' openings (a bounded number of linear passes).
        for anchor in itertools.islice(_ERRORS_ANCHOR.finditer(body), MAX_ANCHORS):
            for value in iter_json_values(body[anchor.start() :]):
                items, object_form = _find_errors(value)
                if items is not None and object_form:
                    notes.add("critique found after restarting the scan at '{\"errors\"'")
                    return _coerce_items(items, kind, notes, default_severity)
                break
        if bare is not None:
            notes.add("bare list of errors (no enclosing object)")
            return _coerce_items(bare, kind, notes, default_severity)
        notes.add("no JSON object with an errors list found")
        return Critique(errors=(), valid=False, problems=notes.result())
    except Exception as exc:
        return Critique.invalid(f"internal error while parsing: {type(exc).__name__}: {exc}")
