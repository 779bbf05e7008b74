"""Error injection for tables: edits of the table model, each with an exact plain-words label.

Every edit type picks its target on the reference model and returns a `Plan`: the
grid cells it claims (so several edits in one pair never touch the same element),
an `apply` that finds its cells by identity key (so it still works after other
edits moved rows or columns), and the probe addresses that paint the labelled
element for the pixel check. Locations and row numbers refer to the reference.
"""
from __future__ import annotations

import copy
import random
import string
from collections.abc import Callable

from visual_erm.perturb.base import Edit, NotApplicable, Perturbation, Plan
from visual_erm.tasks import table as T
from visual_erm.tasks.base import Task

MAX_EDITS = 4
KEYBOARD_NEIGHBOURS = dict(zip("abcdefghijklmnopqrstuvwxyz", ["s", "vn", "xv", "sf", "wr", "dg", "fh", "gj", "uo",
                                                              "hk", "jl", "k", "n", "bm", "ip", "o", "w", "et", "ad",
                                                              "ry", "yi", "cb", "qe", "zc", "tu", "x"]))


def keyed(model: T.TableModel) -> T.TableModel:
    """A copy whose cells carry identity keys (row-major), which survive deep copies."""
    model = copy.deepcopy(model)
    for k, cell in enumerate(c for row in model.rows for c in row):
        cell.key = k
    return model


def _find(model: T.TableModel, key: int) -> tuple[int, int]:
    for r, row in enumerate(model.rows):
        for i, cell in enumerate(row):
            if cell.key == key:
                return r, i
    raise KeyError(key)


def _simple_cells(model: T.TableModel, body_only: bool = True):
    """(r, c, cell) for unmerged cells, body rows only by default."""
    first = len(model.header) if body_only else 0
    for (r, i), (_, c) in sorted(T.origins(model).items()):
        cell = model.rows[r][i]
        if r >= first and cell.colspan == 1 and cell.rowspan == 1:
            yield r, c, cell


def _free_rows(model: T.TableModel) -> list[int]:
    """Body rows no rowspan reaches into or out of (so they can move or vanish alone)."""
    covered = T.layout(model)
    spanned = {r for (r, _), (r0, i) in covered.items() if model.rows[r0][i].rowspan > 1}
    return [r for r in range(len(model.header), len(model.rows)) if r not in spanned]


def _row_cells(model: T.TableModel, r: int) -> frozenset:
    return frozenset((r, c) for c in range(model.ncols))


def _column_cells(model: T.TableModel, c: int) -> frozenset:
    return frozenset((r, c) for r in range(len(model.rows)))


def _cell_phrase(model: T.TableModel, r: int, c: int) -> str:
    return f"{T.row_phrase(model, r)}, {T.column_phrase(model, c)}"


def _columns_phrase(model: T.TableModel, a: int, b: int) -> str:
    """"columns 'Q1' and 'Q3'" (or their numbers where the header is blank)."""
    named = [T.column_phrase(model, c).removeprefix("column ") for c in (a, b)]
    return f"columns {named[0]} and {named[1]}"


def _row_text(model: T.TableModel, r: int) -> tuple[str, ...]:
    covered = T.layout(model)
    return tuple(model.rows[covered[(r, c)][0]][covered[(r, c)][1]].text for c in range(model.ncols))


def _decimals(fmt: str) -> int:
    spec = next(field[2] for field in string.Formatter().parse(fmt) if field[1] is not None) or ""
    return int(spec.split(".")[1][0]) if "." in spec else 0


def _wrong_number(value: float, fmt: str, rng: random.Random) -> float:
    """A plausible misread: two digits transposed, or the value off by 15-60 %."""
    decimals = _decimals(fmt)
    digits = f"{abs(value):.{decimals}f}".replace(".", "")
    pairs = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1]]
    if pairs and rng.random() < 0.5:
        i = rng.choice(pairs)
        swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]
        new = int(swapped) / 10**decimals * (-1 if value < 0 else 1)
    else:
        new = value * (rng.uniform(1.15, 1.6) if rng.random() < 0.5 else rng.uniform(0.4, 0.85))
    new = round(new, decimals)
    return int(new) if "d}" in fmt else new


def _typo(word: str, rng: random.Random) -> str:
    """A one-letter slip: adjacent letters swapped, a letter dropped, doubled or mistyped."""
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    for _ in range(20):
        i = rng.choice(letters)
        kind = rng.choice(["swap", "drop", "double", "neighbour"])
        if kind == "swap" and i + 1 < len(word) and word[i + 1].isalpha() and not word[i].isupper():
            new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif kind == "drop" and len(letters) > 3:
            new = word[:i] + word[i + 1:]
        elif kind == "double":
            new = word[:i] + word[i] + word[i:]
        else:
            near = rng.choice(KEYBOARD_NEIGHBOURS.get(word[i].lower(), "e"))
            new = word[:i] + (near.upper() if word[i].isupper() else near) + word[i + 1:]
        if new != word:
            return new
    raise NotApplicable(f"no typo for {word!r}")


# ---------------------------------------------------------------- edit types


def change_number(model, rng, markdown):
    candidates = [(r, c, cell) for r, c, cell in _simple_cells(model) if cell.numeric]
    if not candidates:
        raise NotApplicable("no numeric cell")
    r, c, cell = rng.choice(candidates)
    value = _wrong_number(cell.value, cell.fmt, rng)
    new_text = cell.fmt.format(value)
    if new_text == cell.text:
        raise NotApplicable("the new number prints the same")
    key, label, column = cell.key, T.row_label(model, r), T.column_name(model, c)
    subject = f"'{column}' for '{label}'" if label else f"{T.row_phrase(model, r)} under '{column}'"

    def apply(m):
        target = m.rows[_find(m, key)[0]][_find(m, key)[1]]
        target.value, target.text = value, new_text

    return Plan("change_number", "numeric_error", _cell_phrase(model, r, c),
                f"{subject} is {new_text} instead of {cell.text}", frozenset({(r, c)}), apply, (("cell", r, c),))


def header_typo(model, rng, markdown):
    starts = T.origins(model)
    candidates = [(r, i) for r in range(len(model.header)) for i, cell in enumerate(model.rows[r])
                  if sum(ch.isalpha() for ch in cell.text) >= 3]
    if not candidates:
        raise NotApplicable("no header word to misspell")
    r, i = rng.choice(candidates)
    cell, (_, c) = model.rows[r][i], starts[(r, i)]
    new_text = _typo(cell.text, rng)
    key = cell.key

    def apply(m):
        row, index = _find(m, key)
        m.rows[row][index].text = new_text

    claims = frozenset((r + dr, c + dc) for dr in range(cell.rowspan) for dc in range(cell.colspan))
    return Plan("header_typo", "text_error", f"header '{cell.text}'",
                f"header '{cell.text}' is misspelled as '{new_text}'", claims, apply, (("cell", r, c),))


def _two_rows(model, rng):
    free = [r for r in _free_rows(model)]
    pairs = [(a, b) for a in free for b in free if a < b and _row_text(model, a) != _row_text(model, b)]
    if not pairs:
        raise NotApplicable("no two movable rows differ")
    adjacent = [p for p in pairs if p[1] - p[0] == 1]
    return rng.choice(adjacent if adjacent and rng.random() < 0.6 else pairs)


def swap_rows(model, rng, markdown):
    a, b = _two_rows(model, rng)
    key_a, key_b = model.rows[a][0].key, model.rows[b][0].key
    names = [T.row_label(model, r) for r in (a, b)]

    def apply(m):
        ra, rb = _find(m, key_a)[0], _find(m, key_b)[0]
        h = len(m.header)
        m.body[ra - h], m.body[rb - h] = m.body[rb - h], m.body[ra - h]

    def number(r):  # the row's 1-based number in the body
        return r - len(model.header) + 1

    what = f"rows '{names[0]}' and '{names[1]}'" if all(names) else f"rows {number(a)} and {number(b)}"
    return Plan("swap_rows", "layout_error", f"rows {number(a)} and {number(b)}",
                f"{what} are in swapped order", _row_cells(model, a) | _row_cells(model, b), apply,
                (("row", a), ("row", b)))


def swap_columns(model, rng, markdown):
    covered = T.layout(model)
    plain = [c for c in range(model.ncols)
             if all(model.rows[covered[(r, c)][0]][covered[(r, c)][1]].colspan == 1
                    and model.rows[covered[(r, c)][0]][covered[(r, c)][1]].rowspan == 1
                    for r in range(len(model.rows)))]
    def column(c):
        return tuple(model.rows[covered[(r, c)][0]][covered[(r, c)][1]].text for r in range(len(model.rows)))

    pairs = [(a, b) for a in plain for b in plain if a < b and column(a) != column(b)]
    if not pairs:
        raise NotApplicable("no two plain columns")
    adjacent = [p for p in pairs if p[1] - p[0] == 1]
    a, b = rng.choice(adjacent if adjacent and rng.random() < 0.6 else pairs)

    def apply(m):
        grid = T.layout(m)
        for r in range(len(m.rows)):
            (_, ia), (_, ib) = grid[(r, a)], grid[(r, b)]
            m.rows[r][ia], m.rows[r][ib] = m.rows[r][ib], m.rows[r][ia]
        m.align[a], m.align[b] = m.align[b], m.align[a]

    names = _columns_phrase(model, a, b)
    return Plan("swap_columns", "layout_error", names, f"{names} are in swapped order",
                _column_cells(model, a) | _column_cells(model, b), apply, (("column", a), ("column", b)))


def merge_cells(model, rng, markdown):
    if markdown:
        raise NotApplicable("Markdown tables cannot merge cells")
    simple = {(r, c): cell for r, c, cell in _simple_cells(model)}
    pairs = [(r, c) for (r, c) in simple if (r, c + 1) in simple]
    if not pairs:
        raise NotApplicable("no two adjacent plain cells")
    r, c = rng.choice(pairs)
    left, right = simple[(r, c)], simple[(r, c + 1)]
    keys = left.key, right.key

    def apply(m):
        row, i = _find(m, keys[0])
        m.rows[row][i].colspan = 2
        row, j = _find(m, keys[1])
        del m.rows[row][j]

    columns = _columns_phrase(model, c, c + 1)
    lost = f"; '{right.text}' is missing" if right.text and right.text != left.text else ""
    return Plan("merge_cells", "layout_error", f"{T.row_phrase(model, r)}, {columns}",
                f"the cells of {columns} in {T.row_phrase(model, r)} are merged into one cell "
                f"showing '{left.text}'{lost}", frozenset({(r, c), (r, c + 1)}), apply,
                (("cell", r, c), ("cell", r, c + 1)))


def split_cell(model, rng, markdown):
    starts = T.origins(model)
    merged = [(r, i) for (r, i) in starts if model.rows[r][i].colspan > 1 or model.rows[r][i].rowspan > 1]
    if markdown or not merged:
        raise NotApplicable("no merged cell")
    r, i = rng.choice(merged)
    cell, (_, c) = model.rows[r][i], starts[(r, i)]
    offsets = [(dr, dc) for dr in range(cell.rowspan) for dc in range(cell.colspan)]
    key = cell.key

    def apply(m):  # offsets from where the cell is now: other edits may have dropped rows above it
        row, index = _find(m, key)
        col = T.origins(m)[(row, index)][1]
        m.rows[row][index].colspan = m.rows[row][index].rowspan = 1
        for dr, dc in offsets[1:]:
            at = sum(1 for (rr, _), (_, cc) in T.origins(m).items() if rr == row + dr and cc < col + dc)
            m.rows[row + dr].insert(at, T.Cell("", bold=m.rows[row][index].bold))

    span = f"{cell.colspan} columns" if cell.colspan > 1 else f"{cell.rowspan} rows"
    where = f"header '{cell.text}'" if r < len(model.header) else _cell_phrase(model, r, c)
    return Plan("split_cell", "layout_error", where,
                f"the merged cell '{cell.text}' should span {span} but is split into separate cells",
                frozenset((r + dr, c + dc) for dr, dc in offsets), apply, (("cell", r, c),))


def change_alignment(model, rng, markdown):
    covered = T.layout(model)
    columns = []
    for c in range(model.ncols):
        cells = [model.rows[covered[(r, c)][0]][covered[(r, c)][1]] for r in range(len(model.rows))]
        plain = [x for x in cells if x.colspan == 1 and x.align is None]
        if len({len(x.text) + 2 * x.bold for x in plain}) > 1:
            columns.append(c)
    if not columns:
        raise NotApplicable("no column whose alignment shows")
    c = rng.choice(columns)
    old = model.align[c]
    new = rng.choice([a for a in T.ALIGNS if a != old])

    def apply(m):
        m.align[c] = new

    return Plan("change_alignment", "layout_error", T.column_phrase(model, c),
                f"{T.column_phrase(model, c)} is {new}-aligned instead of {old}-aligned",
                _column_cells(model, c), apply, (("column", c),))


def drop_row(model, rng, markdown):
    free = _free_rows(model)
    if len(model.body) < 3 or not free:
        raise NotApplicable("too few rows to drop one")
    r = rng.choice(free)
    key = model.rows[r][0].key
    label = T.row_label(model, r)

    def apply(m):
        row = _find(m, key)[0]
        del m.body[row - len(m.header)]

    what = f"the row '{label}'" if label else T.row_phrase(model, r)
    return Plan("drop_row", "layout_error", T.row_phrase(model, r), f"{what} is missing",
                _row_cells(model, r), apply, (("row", r),))


def toggle_bold(model, rng, markdown):
    candidates = [(r, c, cell) for r, c, cell in _simple_cells(model) if cell.text.strip()]
    if not candidates:
        raise NotApplicable("no body cell")
    r, c, cell = rng.choice(candidates)
    key, bold = cell.key, not cell.bold

    def apply(m):
        row, i = _find(m, key)
        m.rows[row][i].bold = bold

    state = "bold but should be regular" if bold else "regular but should be bold"
    return Plan("toggle_bold", "text_error", _cell_phrase(model, r, c), f"'{cell.text}' is {state}",
                frozenset({(r, c)}), apply, (("cell", r, c),))


VOCABULARIES = (T.REGIONS, T.SEGMENTS, T.COURSES, T.PRODUCTS, T.TEAMS, T.STATIONS, T.COUNTRIES,
                T.QUESTIONS, [v[0] for v in T.VARIABLES])


def change_text(model, rng, markdown):
    def wordy(text):
        return sum(ch.isalpha() for ch in text) >= 2 and not any(ch.isdigit() for ch in text)

    candidates = [(r, c, cell) for r, c, cell in _simple_cells(model) if not cell.numeric and wordy(cell.text)]
    rng.shuffle(candidates)
    for r, c, cell in candidates:  # noqa: B007 -- r, c, cell of the break are used after the loop
        in_column = {x.text for _, cc, x in _simple_cells(model) if cc == c}
        pool = next((v for v in VOCABULARIES if cell.text in v), None)
        options = sorted(set(pool or in_column) - in_column) or sorted(in_column - {cell.text})
        options = [o for o in options if wordy(o)]
        if options:
            break
    else:
        raise NotApplicable("no text cell to change")
    new_text, key = rng.choice(options), cell.key

    def apply(m):
        row, i = _find(m, key)
        m.rows[row][i].text = new_text

    return Plan("change_text", "text_error", _cell_phrase(model, r, c),
                f"the cell reads '{new_text}' instead of '{cell.text}'", frozenset({(r, c)}), apply,
                (("cell", r, c),))


EDITS: dict[str, Callable[[T.TableModel, random.Random, bool], Plan]] = {
    "change_number": change_number, "header_typo": header_typo, "swap_rows": swap_rows,
    "swap_columns": swap_columns, "merge_cells": merge_cells, "split_cell": split_cell,
    "change_alignment": change_alignment, "drop_row": drop_row, "toggle_bold": toggle_bold,
    "change_text": change_text,
}
CATEGORY = {"change_number": "numeric_error", "header_typo": "text_error", "swap_rows": "layout_error",
            "swap_columns": "layout_error", "merge_cells": "layout_error", "split_cell": "layout_error",
            "change_alignment": "layout_error", "drop_row": "layout_error", "toggle_bold": "text_error",
            "change_text": "text_error"}


def perturb(task: Task, rng: random.Random, n_edits: int, names=None) -> Perturbation:
    """`n_edits` (0..4) edits on different cells/rows/columns; NotApplicable if they do not fit.

    Edit types are tried in random order, each once before any repeats; `names`
    restricts them (tests use it to force one type).
    """
    if not 0 <= n_edits <= MAX_EDITS:
        raise ValueError(f"n_edits must be in 0..{MAX_EDITS}, got {n_edits}")
    if not isinstance(task.spec, T.TableModel):
        raise NotApplicable("table edits need the TableModel the code was printed from")
    markdown = task.source == "table/markdown"
    reference = keyed(task.spec)
    def printed(m):
        return T.print_table(m, markdown)

    current, claimed, edits = copy.deepcopy(reference), set(), []
    order = list(names or EDITS)
    rng.shuffle(order)
    for name in order * 3:
        if len(edits) == n_edits:
            break
        try:
            plan = EDITS[name](reference, rng, markdown)
        except NotApplicable:
            continue
        if plan.claims & claimed:
            continue
        single = copy.deepcopy(reference)
        plan.apply(single)
        plan.apply(current)
        claimed |= plan.claims
        footprint = (T.to_html(reference), T.to_html(reference, probe=plan.probe))
        edits.append(Edit(plan.name, plan.category, plan.location, plan.description, printed(single), footprint))
    if len(edits) < n_edits:
        raise NotApplicable(f"only {len(edits)} of {n_edits} edits fit this table")
    return Perturbation(printed(current) if edits else task.code, tuple(edits))
