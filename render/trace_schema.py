"""The chart trace's JSON shape, its size caps and the validator the zygote applies.

A trace (see render/trace.py) is what a chart script drew, as plain JSON::

    {"texts":  [[role, string], ...],        role in ROLES, strings <= MAX_TEXT_CHARS
     "types":  {chart_type: calls, ...},     outermost plotting calls by Axes method name
     "colors": [[chart_type, color], ...],   unique pairs; "#rrggbb" or "cmap:<name>"
     "layout": [[nrows, ncols, row_start, row_end, col_start, col_end], ...]}

It travels in the task's frame header, so it is untrusted: `validate_trace` accepts exactly
this shape within the caps and returns None for anything else. Importing this is light (no
matplotlib): the zygote and the host both use it.
"""
from __future__ import annotations

import json
import re

ROLES = ("title", "label", "tick", "legend", "text")
MAX_TEXTS = 256
MAX_TEXT_CHARS = 120
MAX_TYPES = 64
MAX_COLORS = 256
MAX_LAYOUT = 64
MAX_GRID = 1000  # subplot grid indices above this are not a chart
MAX_TRACE_BYTES = 64 * 1024  # the trace's JSON in the frame header
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_COLOR = re.compile(r"#[0-9a-f]{6}|cmap:[A-Za-z0-9_.+\-]{1,64}")
KEYS = ("texts", "types", "colors", "layout")


def empty_trace() -> dict:
    return {"texts": [], "types": {}, "colors": [], "layout": []}


def shrink_trace(trace: dict, max_bytes: int = MAX_TRACE_BYTES) -> dict:
    """Drop texts (then colours) from the end until the JSON fits `max_bytes`."""
    trace = {key: trace[key] for key in KEYS}
    while len(json.dumps(trace).encode()) > max_bytes:
        for key in ("texts", "colors", "layout"):
            if trace[key]:
                trace[key] = trace[key][: len(trace[key]) // 2]
                break
        else:
            trace["types"] = {}
    return trace


def _is_pair(item, first, second) -> bool:
    return isinstance(item, list) and len(item) == 2 and first(item[0]) and second(item[1])


def _is_name(value) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def _is_grid(item) -> bool:
    return (isinstance(item, list) and len(item) == 6
            and all(type(v) is int and 0 <= v <= MAX_GRID for v in item))


def validate_trace(trace) -> dict | None:
    """`trace` when it has exactly the documented shape within the caps, else None."""
    if not isinstance(trace, dict) or sorted(trace) != sorted(KEYS):
        return None
    texts, types, colors, layout = (trace[key] for key in KEYS)
    ok = (
        isinstance(texts, list) and len(texts) <= MAX_TEXTS
        and all(_is_pair(t, lambda r: r in ROLES,
                         lambda s: isinstance(s, str) and len(s) <= MAX_TEXT_CHARS) for t in texts)
        and isinstance(types, dict) and len(types) <= MAX_TYPES
        and all(_is_name(k) and type(v) is int and v >= 0 for k, v in types.items())
        and isinstance(colors, list) and len(colors) <= MAX_COLORS
        and all(_is_pair(c, _is_name, lambda s: isinstance(s, str) and _COLOR.fullmatch(s) is not None)
                for c in colors)
        and isinstance(layout, list) and len(layout) <= MAX_LAYOUT and all(_is_grid(g) for g in layout)
    )
    return trace if ok else None
