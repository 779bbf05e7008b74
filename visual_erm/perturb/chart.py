"""Error injection for charts: structural edits, each with an exact plain-words label.

Two paths, one contract (an edit type picks its target on the reference and
returns a `Plan`, see `visual_erm.perturb.chart_plan`: the Edit label, the
elements it claims so edits in one pair never touch the same element, and an
`apply`):

* spec path (`EDITS`, here; tasks from `visual_erm.tasks.chart`): `apply` edits
  a ChartSpec, finding series by name so it still works after other edits; the
  perturbed code is the edited spec printed again, and footprints paint the
  labelled element with `print_code(spec, probe=...)`.
* ast path (`AST_EDITS`, `perturb_code`, in `visual_erm.perturb.chart_ast`; any
  matplotlib script, e.g. real datasets without a spec): edits the Python `ast`
  and unparses it. Re-exported here, so this module stays the one import.
"""
from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Callable

from visual_erm.perturb.base import Edit, NotApplicable, Perturbation
from visual_erm.perturb.chart_ast import (
    AST_EDITS,
    COLOR_NOUNS,
    PROBE,
    SCALE_CALLS,
    TEXT_CALLS,
    ast_change_color,
    ast_change_data_value,
    ast_change_scale,
    perturb_code,
)  # fmt: skip
from visual_erm.perturb.chart_plan import (
    MAX_EDITS,
    SWAP_WORDS,
    Plan,
    alter_text,
    choose_plans,
    conflict,
    like,
    new_value,
    typo,
)  # fmt: skip
from visual_erm.tasks import chart as C
from visual_erm.tasks.base import Task

__all__ = [
    "AST_EDITS", "CATEGORY", "CHART_NAMES", "COLOR_NOUNS", "EDITS", "LINESTYLES", "MARKER_NAMES", "MAX_EDITS", "MULTI",
    "NOTE_WORDS", "NOUN", "PLURAL", "PROBE", "SCALE_CALLS", "SWAP_WORDS", "TEXT_CALLS", "Plan", "ast_change_color",
    "ast_change_data_value", "ast_change_scale", "choose_plans", "conflict", "perturb", "perturb_code",
]  # fmt: skip

NOTE_WORDS = ("Peak", "Highest", "Record", "Low", "Max", "Launch", "Outlier", "Target")
PLURAL = {"line": "lines", "scatter": "scatter series", "area": "areas", "stacked_area": "areas", "hist": "histograms",
          "box": "boxes"}  # fmt: skip
NOUN = {"line": "line", "scatter": "scatter series", "area": "area", "stacked_area": "area", "hist": "histogram",
        "box": "box"}  # fmt: skip
CHART_NAMES = {"bar": "bar chart", "grouped_bar": "grouped bar chart", "stacked_bar": "stacked bar chart",
               "line": "line chart", "area": "area chart", "stacked_area": "stacked area chart",
               "pie": "pie chart"}  # fmt: skip
MARKER_NAMES = {"o": "circle", "s": "square", "^": "triangle", "D": "diamond", "v": "down-triangle", "": "no"}
LINESTYLES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dotted"}


def perturb(task: Task, rng: random.Random, n_edits: int) -> Perturbation:
    """Apply up to `n_edits` (0..4) compatible edits; tasks without a ChartSpec take the ast path."""
    n_edits = max(0, min(n_edits, MAX_EDITS))
    if not isinstance(task.spec, C.ChartSpec):
        return perturb_code(task.code, rng, n_edits)
    plans, spec = choose_plans(EDITS, task.spec, rng, n_edits), task.spec
    for plan in plans:
        spec = plan.apply(spec)
    return Perturbation(C.print_code(spec) if plans else task.code, tuple(p.edit for p in plans))


# ----------------------------------------------------------------------------- spec path


def _panel(spec, p: int, **changes):
    panels = list(spec.panels)
    panels[p] = dataclasses.replace(panels[p], **changes)
    return dataclasses.replace(spec, panels=tuple(panels))


def _series(p: int, name: str, fn) -> Callable:
    """An apply that rewrites the series called `name` in panel p."""
    return lambda spec: _panel(spec, p, series=tuple(fn(s) if s.name == name else s for s in spec.panels[p].series))


def _pick(spec, rng: random.Random, ok) -> int:
    choices = [p for p, pn in enumerate(spec.panels) if ok(pn)]
    if not choices:
        raise NotApplicable("no panel fits")
    return rng.choice(choices)


def _plan(spec, name, category, location, description, claims, apply, probe, added=False) -> Plan:
    """Prints the single edit and its footprint; `added` probes the element in the edited chart."""
    single = apply(spec)
    base = single if added else spec
    footprint = (C.print_code(base), C.print_code(base, probe=probe))
    return Plan(Edit(name, category, location, description, C.print_code(single), footprint), frozenset(claims), apply)


def _element(pn, s) -> str:
    return f"{NOUN.get(pn.type, 'bars of series')} '{s.name}'"


def _free_color(rng: random.Random, pn) -> str:
    used = {s.color for s in pn.series} | {c for s in pn.series for c in s.point_colors}
    return rng.choice([c for c in C.EXTRA_COLORS if c not in used])


def change_data_value(spec, rng):
    kinds = C.BAR_TYPES + ("line", "scatter", "pie", "area", "stacked_area", "heatmap", "box")
    p = _pick(spec, rng, lambda pn: pn.type in kinds)
    pn = spec.panels[p]
    i = rng.randrange(len(pn.series))
    s = pn.series[i]
    claims = {f"{p}/series/{s.name}", f"{p}/range"}
    if pn.type == "box":
        delta = (max(s.values) - min(s.values)) * rng.uniform(0.6, 1.0) * rng.choice((-1, 1))
        moved = tuple(like(v, v + delta) for v in s.values)
        old, new = statistics.median(s.values), statistics.median(moved)
        words = (f"The box '{s.name}' is shifted {'up' if delta > 0 else 'down'}: "
                 f"its median is {new:g} instead of {old:g}")
        apply = _series(p, s.name, lambda t: dataclasses.replace(t, values=moved))
        location = C.where(spec, p, f"box '{s.name}'")
        return _plan(spec, "change_data_value", "data_error", location, words, claims, apply, ("series", p, i))
    if pn.type == "heatmap":
        cells = [v for t in pn.series for v in t.values]
        low, high = min(cells), max(cells)
        inner = [(a, b) for a, t in enumerate(pn.series) for b, v in enumerate(t.values) if low < v < high]
        if high - low < 10 or not inner:
            raise NotApplicable("flat heatmap")
        i, j = rng.choice(inner)
        s, old = pn.series[i], pn.series[i].values[j]
        new = low + 1 + round((high - low - 2) * (0.1 if old > (low + high) / 2 else 0.9))
        claims = {f"{p}/series/{s.name}", f"{p}/range"}
    else:
        j = rng.randrange(len(s.values))
        old = s.values[j]
        positive = pn.scale == "log" or pn.type == "pie"
        new = new_value(rng, old, [v for t in pn.series for v in t.values], pn.limits, positive)
    cat = pn.categories[j] if pn.categories else None
    if pn.type in C.BAR_TYPES:
        of = f" of series '{s.name}'" if len(pn.series) > 1 else ""
        location, words = f"bar '{cat}'{of}", f"The bar for '{cat}'{of} is {new} instead of {old}"
    elif pn.type == "line":
        location, words = f"point '{cat}' of line '{s.name}'", f"The line '{s.name}' at {cat} is {new} instead of {old}"
    elif pn.type == "scatter":
        location = f"point at x={s.x[j]} of scatter series '{s.name}'"
        words = f"The point of '{s.name}' at x={s.x[j]} has y={new} instead of {old}"
    elif pn.type == "pie":
        location = f"wedge '{cat}'"
        words = f"The wedge '{cat}' is drawn for {new} instead of {old}, so every share changes"
    elif pn.type == "heatmap":
        location = f"cell ('{s.name}', '{cat}')"
        words = f"The heatmap cell for '{s.name}', '{cat}' is {new} instead of {old}"
    else:
        location, words = f"area '{s.name}' at {cat}", f"The area '{s.name}' at {cat} is {new} instead of {old}"
    apply = _series(p, s.name, lambda t: dataclasses.replace(t, values=t.values[:j] + (new,) + t.values[j + 1 :]))
    probe = ("series", p, i) if "area" in pn.type else ("point", p, i, j)
    return _plan(spec, "change_data_value", "data_error", C.where(spec, p, location), words, claims, apply, probe)


MULTI = ("grouped_bar", "stacked_bar", "line", "scatter", "hist", "area", "stacked_area", "box")


def drop_series(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.type in MULTI and len(pn.series) >= 2)
    pn = spec.panels[p]
    i = rng.randrange(len(pn.series))
    s = pn.series[i]
    def apply(sp):
        return _panel(sp, p, series=tuple(t for t in sp.panels[p].series if t.name != s.name))

    claims = {f"{p}/series/{s.name}", f"{p}/serieslist", f"{p}/legend"}
    return _plan(spec, "drop_series", "structure_error", C.where(spec, p, _element(pn, s)),
                 f"The {_element(pn, s)} is missing", claims, apply, ("series", p, i))  # fmt: skip


def add_series(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.type in MULTI[:-1] and pn.limits is None and len(pn.series) < 5)
    pn = spec.panels[p]
    used = {s.name for s in pn.series}
    name = rng.choice(sorted({n for g in C.GROUPS for n in g} - used))
    template = rng.choice(pn.series)
    if pn.type == "hist":
        shift = (max(template.values) - min(template.values)) * rng.uniform(0.2, 0.4) * rng.choice((-1, 1))
        values = tuple(like(v, v + shift) for v in template.values)
    else:
        values = tuple(like(v, v * rng.uniform(0.6, 1.3)) for v in template.values)
    new = dataclasses.replace(template, name=name, values=values, color=_free_color(rng, pn))
    def apply(sp):
        return _panel(sp, p, series=sp.panels[p].series + (new,))

    claims = {f"{p}/serieslist", f"{p}/legend", f"{p}/range", f"{p}/newcolor"}
    return _plan(spec, "add_series", "structure_error", C.where(spec, p, _element(pn, new)),
                 f"An extra {_element(pn, new)} is drawn that is not in the reference", claims, apply,
                 ("series", p, len(pn.series)), added=True)  # fmt: skip


def swap_series_colors(spec, rng):
    def ok(pn):
        colors = [c for s in pn.series for c in s.point_colors] if pn.type == "pie" else [s.color for s in pn.series]
        return pn.type != "heatmap" and len(set(colors)) >= 2

    p = _pick(spec, rng, ok)
    pn = spec.panels[p]
    if pn.type == "pie":
        s = pn.series[0]
        j, k = sorted(rng.sample([j for j, c in enumerate(s.point_colors) if c != s.point_colors[0]] + [0], 2))
        a, b, ca, cb = pn.categories[j], pn.categories[k], s.point_colors[j], s.point_colors[k]
        colors = list(s.point_colors)
        colors[j], colors[k] = cb, ca
        apply = _series(p, s.name, lambda t: dataclasses.replace(t, point_colors=tuple(colors)))
        location, probe, claims = f"wedges '{a}' and '{b}'", ("point", p, 0, j), {f"{p}/series/{s.name}"}
    else:
        i, k = sorted(rng.sample(range(len(pn.series)), 2))
        if pn.series[i].color == pn.series[k].color:
            raise NotApplicable("same colour")
        (a, ca), (b, cb) = ((s.name, s.color) for s in (pn.series[i], pn.series[k]))
        recolor = {a: cb, b: ca}

        def apply(sp):
            return _panel(sp, p, series=tuple(
                dataclasses.replace(t, color=recolor.get(t.name, t.color)) for t in sp.panels[p].series))

        location, probe = f"{PLURAL.get(pn.type, 'series')} '{a}' and '{b}'", ("series", p, i)
        claims = {f"{p}/series/{a}", f"{p}/series/{b}"}
    words = f"The colours of '{a}' and '{b}' are swapped: '{a}' is {cb} and '{b}' is {ca}"
    return _plan(spec, "swap_series_colors", "style_error", C.where(spec, p, location), words, claims, apply, probe)


def recolor_series(spec, rng):
    p = _pick(spec, rng, lambda pn: True)
    pn = spec.panels[p]
    if pn.type == "heatmap":
        new = rng.choice([c for c in C.CMAPS if c != pn.cmap])
        return _plan(spec, "recolor_series", "style_error", C.where(spec, p, "heatmap colour map"),
                     f"The heatmap uses the '{new}' colour map instead of '{pn.cmap}'", {f"{p}/cmap"},
                     lambda sp: _panel(sp, p, cmap=new), ("data", p))  # fmt: skip
    new, claims = _free_color(rng, pn), {f"{p}/newcolor"}
    if pn.type == "pie":
        s = pn.series[0]
        j = rng.randrange(len(s.point_colors))
        colors = s.point_colors[:j] + (new,) + s.point_colors[j + 1 :]
        element, old, probe = f"wedge '{pn.categories[j]}'", s.point_colors[j], ("point", p, 0, j)
        apply = _series(p, s.name, lambda t: dataclasses.replace(t, point_colors=colors))
    else:
        i = rng.randrange(len(pn.series))
        s = pn.series[i]
        element, old, probe = _element(pn, s), s.color, ("series", p, i)
        apply = _series(p, s.name, lambda t: dataclasses.replace(t, color=new))
    verb = "are" if element.startswith("bars") else "is"
    words = f"The {element} {verb} {new} instead of {old}"
    return _plan(spec, "recolor_series", "style_error", C.where(spec, p, element), words,
                 claims | {f"{p}/series/{s.name}"}, apply, probe)  # fmt: skip


def change_chart_type(spec, rng):
    convert = {"bar": "line", "grouped_bar": "stacked_bar", "stacked_bar": "grouped_bar", "area": "line",
               "stacked_area": "line", "pie": "bar", "line": "line"}  # fmt: skip
    p = _pick(spec, rng, lambda pn: pn.type in convert)
    pn = spec.panels[p]
    new = convert[pn.type] if pn.type != "line" else ("bar" if len(pn.series) == 1 else "grouped_bar")

    def apply(sp):
        panel = sp.panels[p]
        series = panel.series
        if new == "line":
            series = tuple(dataclasses.replace(s, marker="o", linestyle="-") for s in series)
        if panel.type == "pie":
            series = tuple(dataclasses.replace(s, color=s.point_colors[0], point_colors=()) for s in series)
        return _panel(sp, p, type=new, series=series)

    def article(kind):
        return ("an " if CHART_NAMES[kind][0] in "aeiou" else "a ") + CHART_NAMES[kind]

    words = f"The data is drawn as {article(new)} instead of {article(pn.type)}"
    location = C.panel_position(spec, p) or "plot area"
    return _plan(spec, "change_chart_type", "structure_error", location, words, {f"{p}/*"}, apply, ("data", p))


def change_title_text(spec, rng):
    options = [p for p, pn in enumerate(spec.panels) if pn.title] + ([-1] if spec.suptitle else [])
    if not options:
        raise NotApplicable("no title")
    p = rng.choice(options)
    if p < 0:
        old = spec.suptitle
        new = alter_text(old, rng)
        words = f"The figure title reads '{new}' instead of '{old}'"
        return _plan(spec, "change_title_text", "text_error", "figure title", words,
                     {"suptitle"}, lambda sp: dataclasses.replace(sp, suptitle=new), ("suptitle",))  # fmt: skip
    old = spec.panels[p].title
    new = alter_text(old, rng)
    words = f"The title reads '{new}' instead of '{old}'"
    return _plan(spec, "change_title_text", "text_error", C.where(spec, p, "title"), words,
                 {f"{p}/title"}, lambda sp: _panel(sp, p, title=new), ("title", p))  # fmt: skip


def change_axis_label(spec, rng):
    options = [(p, axis) for p, pn in enumerate(spec.panels) for axis in "xy" if getattr(pn, f"{axis}label")]
    if not options:
        raise NotApplicable("no axis label")
    p, axis = rng.choice(options)
    old = getattr(spec.panels[p], f"{axis}label")
    new = alter_text(old, rng)
    return _plan(spec, "change_axis_label", "text_error", C.where(spec, p, f"{axis}-axis label"),
                 f"The {axis}-axis label reads '{new}' instead of '{old}'", {f"{p}/{axis}label"},
                 lambda sp: _panel(sp, p, **{f"{axis}label": new}), (f"{axis}label", p))  # fmt: skip


def change_legend_label(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.legend and pn.type not in ("pie", "heatmap", "box"))
    pn = spec.panels[p]
    old = rng.choice(pn.series).name
    new = alter_text(old, rng, avoid={s.name for s in pn.series})
    return _plan(spec, "change_legend_label", "text_error", C.where(spec, p, f"legend entry '{old}'"),
                 f"The legend entry '{old}' reads '{new}'", {f"{p}/legend", f"{p}/series/{old}"},
                 _series(p, old, lambda t: dataclasses.replace(t, name=new)), ("legend", p))  # fmt: skip


def _tick_labels(pn) -> list[str]:
    labels = [s.name for s in pn.series] if pn.type == "box" else list(pn.categories)
    if pn.type in ("scatter", "hist"):
        return []
    return [c for c in labels if isinstance(c, str) and sum(ch.isalpha() for ch in c) >= 3]


def typo_tick_label(spec, rng):
    p = _pick(spec, rng, _tick_labels)
    pn = spec.panels[p]
    old = rng.choice(_tick_labels(pn))
    new = typo(old, rng)
    if pn.type == "box":
        apply = _series(p, old, lambda t: dataclasses.replace(t, name=new))
        claims = {f"{p}/cat_ticks", f"{p}/series/{old}"}
    else:
        def apply(sp):
            panel = sp.panels[p]
            notes = tuple(dataclasses.replace(a, x=new) if a.x == old else a for a in panel.annotations)
            return _panel(sp, p, categories=tuple(new if c == old else c for c in panel.categories), annotations=notes)

        claims = {f"{p}/cat_ticks"}
    where = {"pie": f"label of wedge '{old}'",
             "barh": f"y-axis tick label '{old}'"}.get(pn.type, f"x-axis tick label '{old}'")
    return _plan(spec, "typo_tick_label", "text_error", C.where(spec, p, where),
                 f"The label '{old}' is misspelled as '{new}'", claims, apply, ("cat_ticks", p))  # fmt: skip


def change_scale(spec, rng):
    def ok(pn):
        positive = all(v > 0 for s in pn.series for v in s.values) or pn.type == "hist"
        limits_ok = pn.limits is None or pn.limits[0] > 0
        return pn.type in C.BAR_TYPES + ("line", "scatter", "hist") and (pn.scale == "log" or (positive and limits_ok))

    p = _pick(spec, rng, ok)
    pn = spec.panels[p]
    new, axis = "linear" if pn.scale == "log" else "log", C.value_axis(pn)
    name = {"log": "logarithmic", "linear": "linear"}
    return _plan(spec, "change_scale", "structure_error", C.where(spec, p, f"{axis}-axis scale"),
                 f"The {axis}-axis uses a {name[new]} scale instead of a {name[pn.scale]} one", {f"{p}/range"},
                 lambda sp: _panel(sp, p, scale=new), ("val_ticks", p))  # fmt: skip


def change_axis_limits(spec, rng):
    kinds = C.BAR_TYPES + ("line", "scatter", "area", "stacked_area")
    def nonnegative(pn):
        return all(v >= 0 for s in pn.series for v in s.values)

    p = _pick(spec, rng, lambda pn: pn.type in kinds and pn.scale == "linear" and nonnegative(pn))
    pn = spec.panels[p]
    stacked = pn.type in ("stacked_bar", "stacked_area")
    top = max(map(sum, zip(*(s.values for s in pn.series)))) if stacked else max(v for s in pn.series for v in s.values)
    limits = (0.0, float(f"{top * rng.uniform(1.7, 2.3):.2g}"))
    axis = C.value_axis(pn)
    before = f"{pn.limits[0]:g} to {pn.limits[1]:g}" if pn.limits else "the automatic range that fits the data"
    return _plan(spec, "change_axis_limits", "structure_error", C.where(spec, p, f"{axis}-axis range"),
                 f"The {axis}-axis runs from 0 to {limits[1]:g} instead of {before}", {f"{p}/range"},
                 lambda sp: _panel(sp, p, limits=limits), ("val_ticks", p))  # fmt: skip


def move_legend(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.legend and pn.legend_loc != "best")
    old = spec.panels[p].legend_loc
    new = rng.choice([loc for loc in C.LEGEND_LOCS if loc not in (old, "best")])
    return _plan(spec, "move_legend", "structure_error", C.where(spec, p, "legend"),
                 f"The legend is placed at the {new} instead of the {old}", {f"{p}/legend"},
                 lambda sp: _panel(sp, p, legend_loc=new), ("legend", p))  # fmt: skip


def remove_legend(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.legend)
    return _plan(spec, "remove_legend", "structure_error", C.where(spec, p, "legend"), "The legend is missing",
                 {f"{p}/legend"}, lambda sp: _panel(sp, p, legend=False), ("legend", p))  # fmt: skip


def _grid(add: bool):
    def edit(spec, rng):
        p = _pick(spec, rng, lambda pn: pn.type not in ("pie", "heatmap") and pn.grid != add)
        words = "Grid lines are drawn that the reference does not have" if add else "The grid lines are missing"
        return _plan(spec, ("add_grid" if add else "remove_grid"), "style_error", C.where(spec, p, "grid lines"), words,
                     {f"{p}/grid"}, lambda sp: _panel(sp, p, grid=add), ("grid", p), added=add)  # fmt: skip

    return edit


def change_marker_style(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.type in ("line", "scatter"))
    pn = spec.panels[p]
    i = rng.randrange(len(pn.series))
    s = pn.series[i]
    if pn.type == "line" and rng.random() < 0.5:
        new = rng.choice([ls for ls in LINESTYLES if ls != s.linestyle])
        words = f"The line '{s.name}' is {LINESTYLES[new]} instead of {LINESTYLES[s.linestyle]}"
        change = {"linestyle": new}
    else:
        old = s.marker or ("o" if pn.type == "scatter" else "")
        new = rng.choice([m for m in MARKER_NAMES if m != old and (m or pn.type == "line")])
        words = f"The {_element(pn, s)} has {MARKER_NAMES[new]} markers instead of {MARKER_NAMES[old]} markers"
        change = {"marker": new}
    return _plan(spec, "change_marker_style", "style_error", C.where(spec, p, _element(pn, s)), words,
                 {f"{p}/series/{s.name}"}, _series(p, s.name, lambda t: dataclasses.replace(t, **change)),
                 ("series", p, i))  # fmt: skip


def change_orientation(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.type in ("bar", "barh"))
    pn = spec.panels[p]
    new, way = ("barh", "horizontal") if pn.type == "bar" else ("bar", "vertical")
    other = "vertical" if way == "horizontal" else "horizontal"
    def apply(sp):
        return _panel(sp, p, type=new, xlabel=sp.panels[p].ylabel, ylabel=sp.panels[p].xlabel)

    return _plan(spec, "change_orientation", "structure_error", C.panel_position(spec, p) or "plot area",
                 f"The bars are {way} instead of {other}", {f"{p}/*"}, apply, ("data", p))  # fmt: skip


def change_annotation_text(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.annotations)
    k = rng.randrange(len(spec.panels[p].annotations))
    note = spec.panels[p].annotations[k]
    new = rng.choice([w for w in NOTE_WORDS if w != note.text])

    def apply(sp):
        notes = list(sp.panels[p].annotations)
        notes[k] = dataclasses.replace(notes[k], text=new)
        return _panel(sp, p, annotations=tuple(notes))

    return _plan(spec, "change_annotation_text", "text_error", C.where(spec, p, f"annotation '{note.text}'"),
                 f"The annotation reads '{new}' instead of '{note.text}'", {f"{p}/annotation"}, apply,
                 ("annotation", p, k))  # fmt: skip


EDITS: dict[str, Callable[[C.ChartSpec, random.Random], Plan]] = {
    f.__name__: f
    for f in (change_data_value, drop_series, add_series, swap_series_colors, recolor_series, change_chart_type,
              change_title_text, change_axis_label, change_legend_label, typo_tick_label, change_scale,
              change_axis_limits, move_legend, remove_legend, change_marker_style, change_orientation,
              change_annotation_text)
}  # fmt: skip
EDITS.update(add_grid=_grid(True), remove_grid=_grid(False))
CATEGORY = {  # what each edit type is labelled as (tests and data statistics read this)
    "change_data_value": "data_error", "drop_series": "structure_error", "add_series": "structure_error",
    "swap_series_colors": "style_error", "recolor_series": "style_error", "change_chart_type": "structure_error",
    "change_title_text": "text_error", "change_axis_label": "text_error", "change_legend_label": "text_error",
    "typo_tick_label": "text_error", "change_scale": "structure_error", "change_axis_limits": "structure_error",
    "move_legend": "structure_error", "remove_legend": "structure_error", "change_marker_style": "style_error",
    "change_orientation": "structure_error", "change_annotation_text": "text_error", "add_grid": "style_error",
    "remove_grid": "style_error", "change_color": "style_error",
}  # fmt: skip
