"""Find JSON values inside messy language-model output, in linear time.

A judge's reply is free text: a ``<think>`` block, prose, a fenced ```json block, trailing chatter,
sometimes a truncated object. This module turns such text into a stream of decoded JSON values, best
candidates first, without ever raising and without quadratic blow-ups on hostile input (100k ``{``,
100k ``"``, deeply nested brackets). Why each piece exists:

* ``strip_think`` removes reasoning blocks with one regex scan (no ``.*?`` backtracking).
* ``balanced_spans`` is a single left-to-right scanner over the brackets and quotes only. Quotes are
  tracked only *inside* an open bracket, so stray quotes in surrounding prose cannot flip the string
  state; a mismatched closer discards every open bracket (none of them can start valid JSON any more).
* ``iter_json_values`` decodes candidate spans outermost first, with a budget of decoded characters
  proportional to the input length, so the total work stays linear whatever the nesting.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_THINK_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
_INFO_STRING = re.compile(r"[ \t]*[\w+.#-]*[ \t]*")
_SPECIAL = re.compile(r'[\[\]{}"\\]')
_CLOSE_TO_OPEN = {"}": "{", "]": "["}
_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[}\]])', re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*[}\]]")
_DECODER = json.JSONDecoder(strict=False)  # strict=False: models put raw newlines in strings
# Total characters handed to the decoder per call, as a multiple of the text length (plus a floor).
BUDGET_FACTOR = 8
BUDGET_FLOOR = 1 << 16


def strip_think(text: str) -> tuple[str, list[str]]:
    """Remove ``<think>...</think>`` blocks; returns (text, notes).

    An orphan ``</think>`` (the chat template opened the block in the prompt) drops everything before
    it. An unclosed ``<think>`` drops everything after it: the reply ended while still reasoning, so
    whatever JSON sits inside is a draft, not the answer. Nested opening tags inside a block are
    ignored (blocks do not nest).
    """
    notes: list[str] = []
    kept: list[str] = []
    pos = 0
    inside = False
    for m in _THINK_TAG.finditer(text):
        closing = m.group(1) == "/"
        if inside:
            if closing:
                inside = False
                pos = m.end()
        elif closing:
            kept.clear()
            pos = m.end()
            notes.append("dropped text before an orphan </think>")
        else:
            kept.append(text[pos : m.start()])
            inside = True
    if inside:
        notes.append("unclosed <think> block dropped")
    else:
        kept.append(text[pos:])
    return "".join(kept), notes


def fenced_blocks(text: str) -> list[str]:
    """Contents of Markdown code fences (```...```), in order, without the info string (``json``).

    An unterminated last fence counts (the reply may have been cut off).
    """
    blocks = []
    for part in text.split("```")[1::2]:
        first, newline, rest = part.partition("\n")
        info = newline and len(first) <= 40 and _INFO_STRING.fullmatch(first)
        blocks.append(rest if info else part)
    return blocks


def balanced_spans(text: str) -> list[tuple[int, int]]:
    """All bracket pairs ``{...}`` / ``[...]`` that close properly, as (start, end) sorted by start.

    Spans are pairwise nested or disjoint. Work is one regex pass over the special characters.
    """
    spans: list[tuple[int, int]] = []
    stack: list[int] = []
    in_string = False
    escaped_until = -1
    for m in _SPECIAL.finditer(text):
        i = m.start()
        if i < escaped_until:
            continue
        c = text[i]
        if in_string:
            if c == "\\":
                escaped_until = i + 2
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = bool(stack)
        elif c == "{" or c == "[":
            stack.append(i)
        elif c == "}" or c == "]":
            if stack and text[stack[-1]] == _CLOSE_TO_OPEN[c]:
                spans.append((stack.pop(), i + 1))
            else:
                stack.clear()
        # a backslash outside any string is plain prose
    spans.sort()
    return spans


def strip_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}`` or ``]`` outside strings (a common model slip).

    One regex pass: strings are matched (and kept) as whole tokens, so commas inside them survive.
    """
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: m.group() if m.group()[0] == '"' else "", text)


def _decode(span: str) -> tuple[bool, Any]:
    """Decode exactly ``span``; (False, None) on any decoder failure.

    Always a slice, never (text, offset): a decode error counts the newlines before its position
    (``JSONDecodeError.lineno``), which from an offset into a long text makes many failures quadratic.
    """
    try:
        value, stop = _DECODER.raw_decode(span)
    except (ValueError, RecursionError):  # JSONDecodeError, int-digit limit, too deep
        return False, None
    return stop == len(span), value


def decode_whole(text: str) -> tuple[bool, Any]:
    """Decode ``text`` as exactly one JSON document (surrounding whitespace allowed)."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "["):
        return False, None
    return _decode(stripped)


def iter_json_values(text: str) -> Iterator[Any]:
    """Yield decoded JSON objects/arrays found in ``text``, outermost and leftmost first.

    A span is tried only if no enclosing span decoded (a decoded parent already contains the child).
    A span that fails and has a trailing comma is retried once without trailing commas.
    Decoding stops when the character
    budget (``BUDGET_FACTOR * len(text) + BUDGET_FLOOR``) is spent, which bounds the total work.
    """
    spans = balanced_spans(text)
    if not spans:
        return
    budget = BUDGET_FACTOR * len(text) + BUDGET_FLOOR
    parent: list[int] = []  # index of the innermost enclosing span, -1 at top level
    depths: list[int] = []
    chain: list[int] = []
    for i, (start, _end) in enumerate(spans):
        while chain and spans[chain[-1]][1] <= start:
            chain.pop()
        parent.append(chain[-1] if chain else -1)
        depths.append(len(chain))
        chain.append(i)
    by_level: list[list[int]] = [[] for _ in range(max(depths) + 1)]
    for i, depth in enumerate(depths):
        by_level[depth].append(i)
    status = [0] * len(spans)  # 0 untried, 1 decoded or covered by a decoded ancestor, 2 failed
    for level in by_level:
        any_failed = False
        for i in level:
            p = parent[i]
            if p >= 0 and status[p] != 2:
                status[i] = 1
                continue
            start, end = spans[i]
            budget -= end - start
            if budget < 0:
                return
            span = text[start:end]
            ok, value = _decode(span)
            if not ok and _TRAILING_COMMA.search(span):
                budget -= end - start
                if budget < 0:
                    return
                ok, value = _decode(strip_trailing_commas(span))
            status[i] = 1 if ok else 2
            any_failed = any_failed or not ok
            if ok:
                yield value
        if not any_failed:
            return
