"""Completion text -> the code to render: the last fenced block of the task's language.

Policies wrap code in prose, emit drafts before the answer, nest fences, or are cut off mid-SVG by
the token limit. Every reward reads code through this one function so they all agree on what the
policy "wrote". Decisions:

* The LAST qualifying fenced block wins (drafts come first, answers last). Fences follow CommonMark:
  a closer uses the opener's character, is at least as long and carries no info string, so a
  ````` ````markdown ````` block can hold ```` ```python ```` fences; an unclosed fence runs to the
  end (the generation was cut off). A block whose label is the wrong language, or whose content
  fails the kind's check, is searched for nested blocks (depth <= ``MAX_NESTING``).
* A block labelled with the kind's language is the answer as written, even if it will not render
  (the renderer reports why; text rewards still see it): chart ``python``/``py``, table
  ``markdown``/``md``/``html``, svg ``svg``. Unlabelled blocks, and ``xml``/``html`` blocks for
  svg, count only when they hold what the kind renders (matplotlib use, a pipe table or
  ``<table>``, an ``<svg`` element). For svg the last top-level ``<svg>`` element inside is the code.
* Without a qualifying block: svg falls back to the last ``<svg ...>...</svg>`` in free text, table to
  the last pipe-table run or ``<table>...</table>`` (whichever ends later); chart has no fallback.
* A truncated SVG (open elements at the end of the input, no syntax error before that) is repaired
  by the stdlib incremental XML parser: complete elements are kept, open ones closed, the partial
  tail dropped. Text is never patched by regex. An SVG with a syntax error mid-document is returned
  unchanged so the renderer reports it. Inputs declaring entities are not parsed at all.
* ``<think>`` blocks are dropped first. Never raises; every scan is linear in the input length.
"""
from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

from visual_erm.json_extract import strip_think

MAX_NESTING = 3
MAX_REPAIR_CHARS = 4_000_000  # beyond the renderer's own SVG size limit: leave it to report that
MAX_REPAIR_DEPTH = 256  # serialising deeper trees recurses; leave such input to the renderer
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
LANGUAGES = {
    "chart": frozenset({"python", "py", "python3", "py3"}),
    "table": frozenset({"markdown", "md", "gfm", "html"}),
    "svg": frozenset({"svg", "xml", "html", "image/svg+xml"}),
}

_OWN_LANGUAGES = {"chart": LANGUAGES["chart"], "table": LANGUAGES["table"], "svg": frozenset({"svg"})}
_OPEN_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_CLOSE_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*")
_SVG_TAG = re.compile(r"<(/?)svg(?=[\s/>]|$)", re.IGNORECASE)
_TABLE_TAG = re.compile(r"<(/?)table(?=[\s/>]|$)", re.IGNORECASE)
_DELIMITER_ROW = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?")
_MATPLOTLIB = re.compile(r"matplotlib|\bplt\.|\bpyplot\b")
_ENTITY_DECL = re.compile(r"<!(?:ENTITY|DOCTYPE)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class ExtractedCode:
    """``code`` to render, or None with ``problem`` saying why; ``note`` records a repair."""

    code: str | None
    problem: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.code is not None


@dataclasses.dataclass(frozen=True)
class Fence:
    language: str  # first word of the info string, lower case; "" when unlabelled
    content: str
    closed: bool


def fenced_blocks(text: str) -> list[Fence]:
    """Top-level fenced code blocks in order (CommonMark fence matching, any indentation)."""
    blocks: list[Fence] = []
    lines = text.split("\n")
    i, n = 0, len(lines)
    while i < n:
        m = _OPEN_FENCE.fullmatch(lines[i])
        if m is None or (m.group(1)[0] == "`" and "`" in m.group(2)):
            i += 1
            continue
        fence, info = m.group(1), m.group(2).strip()
        language = info.split()[0].lower().lstrip("{.").rstrip("}") if info else ""
        body: list[str] = []
        i += 1
        closed = False
        while i < n:
            c = _CLOSE_FENCE.fullmatch(lines[i])
            if c is not None and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence):
                closed = True
                i += 1
                break
            body.append(lines[i])
            i += 1
        blocks.append(Fence(language, "\n".join(body), closed))
    return blocks


def _tag_spans(text: str, tag: re.Pattern) -> tuple[tuple[int, int] | None, int | None]:
    """(last complete top-level element span, start of a trailing unclosed one) for ``tag``.

    Depth counting over opening/closing tags; a self-closing opener (``<svg/>``) is complete by
    itself. Each tag's end is searched only up to the next tag, so the scan stays linear.
    """
    matches = list(tag.finditer(text))
    last: tuple[int, int] | None = None
    depth, start = 0, 0
    for k, m in enumerate(matches):
        limit = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        gt = text.find(">", m.end(), limit)
        end = gt + 1 if gt >= 0 else limit
        if m.group(1):  # closing tag
            if depth == 0:
                continue
            depth -= 1
            if depth == 0:
                last = (start, end)
        elif gt >= 0 and text[gt - 1] == "/":  # self-closing
            if depth == 0:
                last = (m.start(), end)
        else:
            if depth == 0:
                start = m.start()
            depth += 1
    return last, (start if depth > 0 else None)


def _is_table_line(line: str) -> bool:
    return "|" in line and line.strip() != ""


def pipe_table_spans(text: str) -> list[tuple[int, int]]:
    """Line ranges [first, stop) of GFM pipe tables: a header line, a delimiter row, body rows."""
    lines = text.split("\n")
    spans = []
    i, n = 0, len(lines)
    while i < n:
        if not _is_table_line(lines[i]):
            i += 1
            continue
        j = i
        while j < n and _is_table_line(lines[j]):
            j += 1
        for k in range(i + 1, j):  # the first header + delimiter pair in the run starts the table
            row = lines[k].strip()
            if "-" in row and _DELIMITER_ROW.fullmatch(row):
                spans.append((k - 1, j))
                break
        i = j
    return spans


def _has_table(text: str) -> bool:
    return "<table" in text.lower() or bool(pipe_table_spans(text))


def _qualifies(kind: str, block: Fence) -> bool:
    """A block labelled with the kind's own language counts as written; an unlabelled one (or an
    ``xml``/``html`` one for SVG) must hold what the kind renders."""
    if block.language in _OWN_LANGUAGES[kind]:
        return True
    if block.language and block.language not in LANGUAGES[kind]:
        return False
    if kind == "chart":
        return bool(_MATPLOTLIB.search(block.content))
    if kind == "table":
        return _has_table(block.content)
    return "<svg" in block.content.lower()


def _pick_block(kind: str, text: str, depth: int = 0) -> tuple[str | None, bool]:
    """(content of the last qualifying block, whether any fence was seen)."""
    blocks = fenced_blocks(text)
    chosen = None
    for block in blocks:
        if _qualifies(kind, block):
            chosen = block.content
        elif depth < MAX_NESTING and ("```" in block.content or "~~~" in block.content):
            nested, _ = _pick_block(kind, block.content, depth + 1)
            if nested is not None:
                chosen = nested
    return chosen, bool(blocks)


def repair_svg(text: str) -> tuple[str | None, str]:
    """Close a truncated SVG document with the incremental XML parser; (code, note).

    Returns (text, "") when it is well formed or has a syntax error before its end (left for the
    renderer to report), (repaired, note) when it was cut off, and (None, reason) when nothing
    complete enough to render was parsed.
    """
    if len(text) > MAX_REPAIR_CHARS or _ENTITY_DECL.search(text):
        return text, ""  # never expand entities here; the renderer refuses DTDs itself
    parser = ET.XMLPullParser(events=("start", "end"))
    parser.feed(text)
    root = None
    open_elements = deepest = 0
    try:
        for event, element in parser.read_events():
            if root is None:
                root = element
            open_elements += 1 if event == "start" else -1
            deepest = max(deepest, open_elements)
    except ET.ParseError:
        return text, ""  # a syntax error before the end of the input: not truncation
    if deepest > MAX_REPAIR_DEPTH:
        return text, ""
    if root is None:
        return None, "truncated SVG: the root element's start tag never finished"
    try:
        parser.close()
        return text, ""
    except ET.ParseError:
        pass
    return (ET.tostring(_plain_prefixes(root), encoding="unicode"),
            f"repaired truncated SVG: closed {open_elements} open element(s)")


def _plain_prefixes(root: ET.Element) -> ET.Element:
    """Write SVG as the default namespace and xlink as ``xlink:`` (ElementTree would say ns0/ns1).

    ``ET.tostring(default_namespace=...)`` refuses unqualified attribute names, i.e. every SVG.
    """
    svg, xlink = "{%s}" % SVG_NS, "{%s}" % XLINK_NS
    used_svg = used_xlink = False
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.startswith(svg):
            element.tag = element.tag[len(svg) :]
            used_svg = True
        for key in [k for k in element.attrib if k.startswith(xlink)]:
            element.attrib["xlink:" + key[len(xlink) :]] = element.attrib.pop(key)
            used_xlink = True
    if used_svg:
        root.set("xmlns", SVG_NS)
    if used_xlink:
        root.set("xmlns:xlink", XLINK_NS)
    return root


def _extract_svg(source: str) -> ExtractedCode | None:
    last, open_start = _tag_spans(source, _SVG_TAG)
    if open_start is not None:
        code, note = repair_svg(source[open_start:])
        if code is not None:
            return ExtractedCode(code, None, note)
        if last is None:
            return ExtractedCode(None, note)
    if last is None:
        return None
    return ExtractedCode(source[last[0] : last[1]])


def _free_table(text: str) -> str | None:
    best: tuple[int, str] | None = None
    html, _ = _tag_spans(text, _TABLE_TAG)
    if html is not None:
        best = (html[1], text[html[0] : html[1]])
    spans = pipe_table_spans(text)
    if spans:
        lines = text.split("\n")
        first, stop = spans[-1]
        end = sum(len(line) + 1 for line in lines[:stop])
        if best is None or end > best[0]:
            best = (end, "\n".join(line.strip() for line in lines[first:stop]))
    return None if best is None else best[1]


def extract_code(kind: str, completion: str) -> ExtractedCode:
    """The code a completion gives for a task of ``kind`` (see the module docstring). Never raises."""
    try:
        if kind not in LANGUAGES:
            return ExtractedCode(None, f"unknown kind {kind!r}; expected one of {tuple(LANGUAGES)}")
        if not isinstance(completion, str):
            return ExtractedCode(None, f"completion is {type(completion).__name__}, not str")
        body, _ = strip_think(completion.replace("\r\n", "\n"))
        block, saw_fence = _pick_block(kind, body)
        if kind == "svg":
            found = _extract_svg(block if block is not None else body)
            if found is None and block is not None:  # an ```svg block without an <svg> element
                found = ExtractedCode(block)
            if found is not None:
                return found
        elif block is not None:
            return ExtractedCode(block)
        elif kind == "table":
            table = _free_table(body)
            if table is not None:
                return ExtractedCode(table)
        if saw_fence:
            return ExtractedCode(None, f"no {kind} code block")
        return ExtractedCode(None, "no code block")
    except Exception as exc:
        return ExtractedCode(None, f"internal error while extracting: {type(exc).__name__}: {exc}"[:300])
