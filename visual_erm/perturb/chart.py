"""Error injection for charts: structural edits, each with an exact plain-words label.

Two paths, one contract (an edit type picks its target on the reference and
returns a `Plan`: the Edit label, the elements it claims so edits in one pair
never touch the same element, and an `apply`):

* spec path (`EDITS`, tasks from `visual_erm.tasks.chart`): `apply` edits a
  ChartSpec, finding series by name so it still works after other edits; the
  perturbed code is the edited spec printed again, and footprints paint the
  labelled element with `print_code(spec, probe=...)`.
* ast path (`AST_EDITS`, any matplotlib script, e.g. real datasets without a
  spec): `apply` edits the Python `ast` of calls such as `ax.bar`, `plt.plot`,
  `set_title`, `set_yscale` (found by source position) and the result is
  `ast.unparse`d; footprints wrap the edited call and paint its artist.
"""
from __future__ import annotations

import ast
import dataclasses
import random
import statistics
from typing import Callable

from visual_erm.perturb.base import PROBE_COLOR, Edit, NotApplicable, Perturbation
from visual_erm.tasks import chart as C
from visual_erm.tasks.base import Task

MAX_EDITS = 4
SWAP_WORDS = ("Growth", "Demand", "Output", "Volume", "Income", "Usage", "Traffic", "Costs", "Budget", "Orders")
NOTE_WORDS = ("Peak", "Highest", "Record", "Low", "Max", "Launch", "Outlier", "Target")
PLURAL = {"line": "lines", "scatter": "scatter series", "area": "areas", "stacked_area": "areas", "hist": "histograms",
          "box": "boxes"}  # fmt: skip
NOUN = {"line": "line", "scatter": "scatter series", "area": "area", "stacked_area": "area", "hist": "histogram", "box": "box"}
CHART_NAMES = {"bar": "bar chart", "grouped_bar": "grouped bar chart", "stacked_bar": "stacked bar chart", "line": "line chart",
               "area": "area chart", "stacked_area": "stacked area chart", "pie": "pie chart"}  # fmt: skip
MARKER_NAMES = {"o": "circle", "s": "square", "^": "triangle", "D": "diamond", "v": "down-triangle", "": "no"}
LINESTYLES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dotted"}


@dataclasses.dataclass(frozen=True)
class Plan:
    edit: Edit
    claims: frozenset  # "p/title", "p/series/<name>", ...; "p/*" claims the whole panel
    apply: Callable  # ChartSpec -> ChartSpec (spec path); mutates an ast.Module (ast path)


def conflict(a: frozenset, b: frozenset) -> bool:
    """Two claim sets touch a common element ("p/*" touches everything in panel p)."""
    wide = lambda x, y: x.endswith("/*") and y.startswith(x[:-1])  # noqa: E731
    return any(x == y or wide(x, y) or wide(y, x) for x in a for y in b)


def choose_plans(registry: dict, reference, rng: random.Random, n: int) -> list[Plan]:
    """Up to n plans of distinct types with disjoint claims, types tried in random order."""
    plans, claims, names = [], frozenset(), sorted(registry)
    rng.shuffle(names)
    for name in names:
        if len(plans) >= n:
            break
        try:
            plan = registry[name](reference, rng)
        except NotApplicable:
            continue
        if not conflict(plan.claims, claims):
            plans.append(plan)
            claims |= plan.claims
    return plans


def perturb(task: Task, rng: random.Random, n_edits: int) -> Perturbation:
    """Apply up to `n_edits` (0..4) compatible edits; tasks without a ChartSpec take the ast path."""
    n_edits = max(0, min(n_edits, MAX_EDITS))
    if not isinstance(task.spec, C.ChartSpec):
        return perturb_code(task.code, rng, n_edits)
    plans, spec = choose_plans(EDITS, task.spec, rng, n_edits), task.spec
    for plan in plans:
        spec = plan.apply(spec)
    return Perturbation(C.print_code(spec) if plans else task.code, tuple(p.edit for p in plans))


def perturb_code(code: str, rng: random.Random, n_edits: int) -> Perturbation:
    """The ast path on any matplotlib script: up to `n_edits` edits of AST_EDITS."""
    plans = choose_plans(AST_EDITS, code, rng, max(0, min(n_edits, MAX_EDITS)))
    if not plans:
        return Perturbation(code, ())
    tree = ast.parse(code)
    for plan in plans:
        plan.apply(tree)
    return Perturbation(ast.unparse(tree) + "\n", tuple(p.edit for p in plans))


# ----------------------------------------------------------------------------- shared wording


def _decimals(value) -> int:
    return 0 if isinstance(value, int) else max(1, len(f"{float(value):.6f}".rstrip("0").split(".")[1]))


def _like(example, value):
    """`value` rounded to the precision of `example` (ints stay ints)."""
    return int(round(value)) if isinstance(example, int) else round(value, _decimals(example))


def _new_value(rng: random.Random, old, values, limits=None, positive=False):
    """A clearly different value of the same precision; stays inside fixed axis limits."""
    decimals, span = max(_decimals(v) for v in values), max(abs(v) for v in values) or 1.0
    for _ in range(20):
        factor = rng.uniform(0.3, 0.6) if limits or rng.random() < 0.5 else rng.uniform(1.5, 2.0)
        new = old * factor if old > 0 else old + span * rng.uniform(0.4, 0.8)
        new = int(round(new)) if decimals == 0 else round(new, decimals)
        if abs(new - old) >= 0.25 * max(abs(old), 0.2 * span) and (new > 0 or not positive):
            return new
    raise NotApplicable("no clearly different value at this precision")


def _alter_text(text: str, rng: random.Random, avoid=()) -> str:
    """A plausible different text: another year, another word, another letter in 'Team A'."""
    tokens = text.split(" ")
    options = [k for k, t in enumerate(tokens) if (t.isdigit() and len(t) == 4) or (t.isalpha() and len(t) >= 4)
               or (len(t) == 1 and t.isupper())]  # fmt: skip
    rng.shuffle(options)
    for k in options:
        t = tokens[k]
        if t.isdigit():
            new = str(int(t) + rng.choice((-3, -2, -1, 1, 2, 3)))
        elif len(t) == 1:
            new = chr((ord(t) - 65 + rng.randint(1, 5)) % 26 + 65)
        else:
            word = rng.choice([w for w in SWAP_WORDS if w.lower() != t.lower()])
            new = word if t[0].isupper() else word.lower()
        out = " ".join(tokens[:k] + [new] + tokens[k + 1 :])
        if out != text and out not in avoid:
            return out
    return text + " (est.)"


def _typo(word: str, rng: random.Random) -> str:
    letters = [k for k, ch in enumerate(word) if ch.isalpha()]
    if len(letters) < 3:
        raise NotApplicable("too short for a typo")
    for _ in range(20):
        k, op = rng.choice(letters), rng.randrange(3)
        if op == 0 and k + 1 < len(word) and word[k + 1].isalpha():
            new = word[:k] + word[k + 1] + word[k] + word[k + 2 :]
        elif op == 1 and len(word) >= 4:
            new = word[:k] + word[k + 1 :]
        else:
            new = word[:k] + word[k] + word[k:]
        if new.lower() != word.lower():
            return new
    raise NotApplicable("no typo found")


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
        moved = tuple(_like(v, v + delta) for v in s.values)
        old, new = statistics.median(s.values), statistics.median(moved)
        words = f"The box '{s.name}' is shifted {'up' if delta > 0 else 'down'}: its median is {new:g} instead of {old:g}"
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
        new = _new_value(rng, old, [v for t in pn.series for v in t.values], pn.limits, positive)
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
        location, words = f"wedge '{cat}'", f"The wedge '{cat}' is drawn for {new} instead of {old}, so every share changes"
    elif pn.type == "heatmap":
        location, words = f"cell ('{s.name}', '{cat}')", f"The heatmap cell for '{s.name}', '{cat}' is {new} instead of {old}"
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
    apply = lambda sp: _panel(sp, p, series=tuple(t for t in sp.panels[p].series if t.name != s.name))  # noqa: E731
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
        values = tuple(_like(v, v + shift) for v in template.values)
    else:
        values = tuple(_like(v, v * rng.uniform(0.6, 1.3)) for v in template.values)
    new = dataclasses.replace(template, name=name, values=values, color=_free_color(rng, pn))
    apply = lambda sp: _panel(sp, p, series=sp.panels[p].series + (new,))  # noqa: E731
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
        apply = lambda sp: _panel(sp, p, series=tuple(  # noqa: E731
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
    return _plan(spec, "recolor_series", "style_error", C.where(spec, p, element), words, claims | {f"{p}/series/{s.name}"},
                 apply, probe)  # fmt: skip


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

    article = lambda kind: ("an " if CHART_NAMES[kind][0] in "aeiou" else "a ") + CHART_NAMES[kind]  # noqa: E731
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
        new = _alter_text(old, rng)
        words = f"The figure title reads '{new}' instead of '{old}'"
        return _plan(spec, "change_title_text", "text_error", "figure title", words,
                     {"suptitle"}, lambda sp: dataclasses.replace(sp, suptitle=new), ("suptitle",))  # fmt: skip
    old = spec.panels[p].title
    new = _alter_text(old, rng)
    words = f"The title reads '{new}' instead of '{old}'"
    return _plan(spec, "change_title_text", "text_error", C.where(spec, p, "title"), words,
                 {f"{p}/title"}, lambda sp: _panel(sp, p, title=new), ("title", p))  # fmt: skip


def change_axis_label(spec, rng):
    options = [(p, axis) for p, pn in enumerate(spec.panels) for axis in "xy" if getattr(pn, f"{axis}label")]
    if not options:
        raise NotApplicable("no axis label")
    p, axis = rng.choice(options)
    old = getattr(spec.panels[p], f"{axis}label")
    new = _alter_text(old, rng)
    return _plan(spec, "change_axis_label", "text_error", C.where(spec, p, f"{axis}-axis label"),
                 f"The {axis}-axis label reads '{new}' instead of '{old}'", {f"{p}/{axis}label"},
                 lambda sp: _panel(sp, p, **{f"{axis}label": new}), (f"{axis}label", p))  # fmt: skip


def change_legend_label(spec, rng):
    p = _pick(spec, rng, lambda pn: pn.legend and pn.type not in ("pie", "heatmap", "box"))
    pn = spec.panels[p]
    old = rng.choice(pn.series).name
    new = _alter_text(old, rng, avoid={s.name for s in pn.series})
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
    new = _typo(old, rng)
    if pn.type == "box":
        apply, claims = _series(p, old, lambda t: dataclasses.replace(t, name=new)), {f"{p}/cat_ticks", f"{p}/series/{old}"}
    else:
        def apply(sp):
            panel = sp.panels[p]
            notes = tuple(dataclasses.replace(a, x=new) if a.x == old else a for a in panel.annotations)
            return _panel(sp, p, categories=tuple(new if c == old else c for c in panel.categories), annotations=notes)

        claims = {f"{p}/cat_ticks"}
    where = {"pie": f"label of wedge '{old}'", "barh": f"y-axis tick label '{old}'"}.get(pn.type, f"x-axis tick label '{old}'")
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
    nonnegative = lambda pn: all(v >= 0 for s in pn.series for v in s.values)  # noqa: E731
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
    apply = lambda sp: _panel(sp, p, type=new, xlabel=sp.panels[p].ylabel, ylabel=sp.panels[p].xlabel)  # noqa: E731
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


# ----------------------------------------------------------------------------- ast path (any script)

TEXT_CALLS = {"set_title": "title", "title": "title", "suptitle": "figure title", "set_xlabel": "x-axis label",
              "xlabel": "x-axis label", "set_ylabel": "y-axis label", "ylabel": "y-axis label"}  # fmt: skip
SCALE_CALLS = {"set_xscale": "x", "xscale": "x", "set_yscale": "y", "yscale": "y"}
COLOR_NOUNS = {"bar": "bars", "barh": "bars", "plot": "line", "step": "line", "scatter": "points", "hist": "histogram",
               "fill_between": "filled area"}  # fmt: skip
PROBE = repr(PROBE_COLOR)


def _calls(tree, names) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in names]


def _pos(node) -> tuple:
    return (type(node).__name__, getattr(node, "lineno", None), getattr(node, "col_offset", None))


def _at(tree, pos):
    return next(n for n in ast.walk(tree) if _pos(n) == pos)


def _kw(call: ast.Call, *names):
    return next((k for k in call.keywords if k.arg in names), None)


def _const(node, kind):
    return node.value if isinstance(node, ast.Constant) and type(node.value) in kind else None


def _number(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _number(node.operand)
        return None if value is None else -value
    return _const(node, (int, float))


def _literal(tree, node):
    """The list/tuple literal behind `node`: inline, inside np.array(...), or a name bound once."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("np.array", "numpy.array") and node.args:
        node = node.args[0]
    if isinstance(node, ast.Name):
        stores = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == node.id and isinstance(n.ctx, ast.Store)]
        binds = [s for s in tree.body if isinstance(s, ast.Assign) and len(s.targets) == 1 and s.targets[0] in stores]
        if len(stores) != 1 or len(binds) != 1:
            return None
        return _literal(tree, binds[0].value) if not isinstance(binds[0].value, ast.Name) else None
    return node if isinstance(node, (ast.List, ast.Tuple)) and node.elts else None


def _statement(tree, call):
    """(body, index) of the statement that is exactly this call (bare or assigned)."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            for k, stmt in enumerate(body if isinstance(body, list) else ()):
                if isinstance(stmt, (ast.Expr, ast.Assign)) and stmt.value is call:
                    return body, k
    raise NotApplicable("the call is not a statement of its own")


def _is_statement(tree, call) -> bool:
    try:
        return bool(_statement(tree, call))
    except NotApplicable:
        return False


def _paint_after(tree, call, source: str, wrap: bool = False) -> None:
    """Insert `source` after the call's statement; `wrap` first binds the call's result to `_probe`."""
    body, k = _statement(tree, call)
    stmts = ast.parse(source).body
    for node in (n for stmt in stmts for n in ast.walk(stmt)):
        node.lineno = node.col_offset = None  # inserted code has no source position to be found by
    if wrap:
        stmt = body[k]
        head = [ast.Assign([ast.Name("_probe", ast.Store())], call, lineno=None)]
        if isinstance(stmt, ast.Assign):
            head.append(ast.Assign(stmt.targets, ast.Name("_probe", ast.Load()), lineno=None))
        body[k : k + 1] = head + stmts
    else:
        body[k + 1 : k + 1] = stmts


def _qualify(tree, call: ast.Call, element: str) -> str:
    """In scripts drawing on several axes, says which: "... in the subplot titled 'Revenue'"."""
    receiver = ast.unparse(call.func.value)
    receivers = {ast.unparse(c.func.value) for c in _calls(tree, tuple(COLOR_NOUNS) + ("pie", "imshow"))}
    if len(receivers) < 2 or receiver in ("plt", "fig"):
        return element
    titles = [c.args[0].value for c in _calls(tree, ("set_title",))
              if ast.unparse(c.func.value) == receiver and c.args and _const(c.args[0], (str,))]  # fmt: skip
    return f"{element} in the subplot titled '{titles[0]}'" if titles else f"{element} on axes '{receiver}'"


def _ast_plan(code, name, category, location, description, claims, apply, probe) -> Plan:
    single, painted = ast.parse(code), ast.parse(code)
    apply(single)
    probe(painted)
    edit = Edit(name, category, location, description, ast.unparse(single) + "\n", (code, ast.unparse(painted) + "\n"))
    return Plan(edit, frozenset(claims), apply)


def _data_arg(call: ast.Call):
    """The values argument of bar/barh/plot/pie and the category argument before it (or None)."""
    func, args = call.func.attr, [a for a in call.args if _const(a, (str,)) is None]
    if func == "pie":
        kw = _kw(call, "x")
        return (args[0] if args else kw and kw.value), _kw(call, "labels") and _kw(call, "labels").value
    if func == "plot":
        return (args[-1], args[0] if len(args) == 2 else None) if len(args) in (1, 2) else (None, None)
    kw = _kw(call, "height" if func == "bar" else "width")
    return (args[1] if len(args) > 1 else kw and kw.value), (args[0] if args else None)


def ast_change_data_value(code, rng):
    tree, found = ast.parse(code), []
    for call in _calls(tree, ("bar", "barh", "plot", "pie")):
        data, cats = _data_arg(call)
        values = _literal(tree, data) if data is not None else None
        if values is not None and all(_number(e) is not None for e in values.elts):
            if _is_statement(tree, call):
                found.append((call, values, cats))
    if not found:
        raise NotApplicable("no literal data in bar/barh/plot/pie calls")
    call, node, cats = rng.choice(found)
    numbers = [_number(e) for e in node.elts]
    j = rng.randrange(len(numbers))
    old, func = numbers[j], call.func.attr
    new = _new_value(rng, old, numbers, positive=func == "pie")
    labels = _literal(tree, cats) if cats is not None else None
    cat = _const(labels.elts[j], (str, int)) if labels is not None and len(labels.elts) == len(numbers) else None
    series = _kw(call, "label") and _const(_kw(call, "label").value, (str,))
    noun = {"bar": "bar", "barh": "bar", "plot": "point", "pie": "wedge"}[func]
    item = f"{noun} '{cat}'" if cat is not None else f"{noun} {j + 1}"
    of = f" of series '{series}'" if series and func != "plot" else (f" of line '{series}'" if series else "")
    paint = f"_probe[{j}].set_facecolor({PROBE})"  # one bar of the BarContainer
    if func == "pie":
        paint = f"_probe[0][{j}].set_facecolor({PROBE})"
    elif func == "plot":  # a marker on the reference point
        paint = (f"{ast.unparse(call.func.value)}.plot([_probe[0].get_xdata()[{j}]], [_probe[0].get_ydata()[{j}]], "
                 f"marker='o', markersize=10, linestyle='none', color={PROBE}, zorder=5)")
    node_pos, call_pos = _pos(node), _pos(call)

    def apply(tree):
        _at(tree, node_pos).elts[j] = ast.Constant(new)

    location, words = _qualify(tree, call, item + of), f"The {item}{of} is {new} instead of {old}"
    return _ast_plan(code, "change_data_value", "data_error", location, words, {f"data@{node_pos}"}, apply,
                     lambda t: _paint_after(t, _at(t, call_pos), paint, wrap=True))  # fmt: skip


def ast_change_color(code, rng):
    tree, found = ast.parse(code), []
    for call in _calls(tree, tuple(COLOR_NOUNS)):
        kw = _kw(call, "color", "c")
        if kw is not None and _const(kw.value, (str,)) is not None:
            found.append((call, kw.value.value))  # calls without a colour draw from the colour cycle: left alone
    if not found:
        raise NotApplicable("no call with an explicit colour")
    call, old = rng.choice(found)
    new = rng.choice([c for c in C.EXTRA_COLORS if c != old])
    label = _kw(call, "label") and _const(_kw(call, "label").value, (str,))
    noun = COLOR_NOUNS[call.func.attr]
    same = [c for c, _ in found if c.func.attr == call.func.attr]
    element = f"{noun} '{label}'" if label else (noun if len(same) == 1 else f"{noun} {same.index(call) + 1}")
    pos = _pos(call)

    def recolor(color):
        return lambda tree: setattr(_kw(_at(tree, pos), "color", "c"), "value", ast.Constant(color))

    words = f"The {element} {'are' if noun == 'bars' else 'is'} {new} instead of {old}"
    return _ast_plan(code, "change_color", "style_error", _qualify(tree, call, element), words, {f"call@{pos}"},
                     recolor(new), recolor(PROBE_COLOR))  # fmt: skip


def _ast_text(name: str, kinds: tuple):
    def edit(code, rng):
        tree = ast.parse(code)
        found = [c for c in _calls(tree, [k for k in TEXT_CALLS if TEXT_CALLS[k] in kinds])
                 if c.args and _const(c.args[0], (str,))]  # fmt: skip
        if not found:
            raise NotApplicable(f"no literal {kinds[0]}")
        call = rng.choice(found)
        old, what = call.args[0].value, TEXT_CALLS[call.func.attr]
        new = _alter_text(old, rng)
        twins = [c for c in found if TEXT_CALLS[c.func.attr] == what]
        location = what if len(twins) == 1 else f"title '{old}'" if what == "title" else _qualify(tree, call, what)
        pos = _pos(call)

        def apply(tree):
            _at(tree, pos).args[0] = ast.Constant(new)

        def probe(tree):
            target = _at(tree, pos)
            target.keywords = [k for k in target.keywords if k.arg not in ("color", "c")]
            target.keywords.append(ast.keyword("color", ast.Constant(PROBE_COLOR)))

        return _ast_plan(code, name, "text_error", location, f"The {what} reads '{new}' instead of '{old}'",
                         {f"call@{pos}"}, apply, probe)  # fmt: skip

    return edit


def ast_change_scale(code, rng):
    tree = ast.parse(code)
    found = [c for c in _calls(tree, SCALE_CALLS) if c.args and _const(c.args[0], (str,))]
    if found:
        call = rng.choice(found)
        axis, old = SCALE_CALLS[call.func.attr], call.args[0].value
        new, pos = "linear" if old != "linear" else "log", _pos(call)
        apply = lambda tree: setattr(_at(tree, pos), "args", [ast.Constant(new)] + _at(tree, pos).args[1:])  # noqa: E731
    else:  # no scale call: switch a plot with positive literal data to log right after it is drawn
        plots = []
        for call in _calls(tree, ("bar", "barh", "plot")):
            data, _ = _data_arg(call)
            values = _literal(tree, data) if data is not None else None
            if values is not None and all((_number(e) or 0) > 0 for e in values.elts):
                plots.append(call)
        plots = [c for c in plots if _is_statement(tree, c)]
        if not plots:
            raise NotApplicable("no scale call and no plot of positive literal data")
        call = rng.choice(plots)
        axis, old, new, pos = "x" if call.func.attr == "barh" else "y", "linear", "log", _pos(call)
        receiver = ast.unparse(call.func.value)
        setter = f"plt.{axis}scale('log')" if receiver == "plt" else f"{receiver}.set_{axis}scale('log')"
        apply = lambda tree: _paint_after(tree, _at(tree, pos), setter)  # noqa: E731
    receiver = ast.unparse(call.func.value)
    name = {"log": "logarithmic", "linear": "linear"}
    paint = f"{receiver}.tick_params(axis='{axis}', which='both', labelcolor={PROBE})"
    return _ast_plan(code, "change_scale", "structure_error", _qualify(tree, call, f"{axis}-axis scale"),
                     f"The {axis}-axis uses a {name.get(new, new)} scale instead of a {name.get(old, old)} one",
                     {f"scale@{receiver}:{axis}"}, apply, lambda t: _paint_after(t, _at(t, pos), paint))  # fmt: skip


AST_EDITS: dict[str, Callable[[str, random.Random], Plan]] = {
    "change_data_value": ast_change_data_value,
    "change_color": ast_change_color,
    "change_title_text": _ast_text("change_title_text", ("title", "figure title")),
    "change_axis_label": _ast_text("change_axis_label", ("x-axis label", "y-axis label")),
    "change_scale": ast_change_scale,
}
