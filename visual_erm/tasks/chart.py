"""Chart tasks: a structured ChartSpec, seeded generators of realistic specs, and the code printer.

Ground truth is printed from a spec, never written as text, so error injection
(`visual_erm.perturb.chart`) edits the spec and reprints. `print_code(spec,
probe=address)` paints exactly one element in PROBE_COLOR and changes nothing
else; the pixel check renders both codes to find that element's pixels.

Probe addresses (p is the panel index, i a series, j a point/category):
  ("title", p) ("xlabel", p) ("ylabel", p) ("legend", p) ("grid", p) ("suptitle",)
  ("cat_ticks", p) / ("val_ticks", p): tick labels of the category / value axis
  ("series", p, i)  ("point", p, i, j)  ("data", p): every series  ("annotation", p, k)
"""
from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from visual_erm.perturb.base import PROBE_COLOR
from visual_erm.tasks.base import Task

METRICS = (  # name, unit, low, high, decimals
    ("Revenue", "million USD", 5, 120, 1), ("Units sold", "thousands", 2, 80, 1),
    ("Average temperature", "°C", 2, 32, 1), ("Rainfall", "mm", 10, 250, 0),
    ("Energy consumption", "TWh", 20, 600, 0), ("CO2 emissions", "Mt", 5, 400, 0),
    ("Active users", "millions", 1, 90, 1), ("Market share", "%", 3, 45, 1),
    ("Response time", "ms", 20, 400, 0), ("Net profit", "k€", 50, 900, 0),
    ("Visitors", "thousands", 10, 300, 0), ("Exports", "bn USD", 2, 150, 1),
    ("Graduation rate", "%", 40, 98, 1), ("Crop yield", "t/ha", 1, 9, 2),
)  # fmt: skip
DIMENSIONS = {
    "Quarter": ("Q1", "Q2", "Q3", "Q4"),
    "Month": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "Weekday": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "Hour": ("6am", "8am", "10am", "12pm", "2pm", "4pm", "6pm", "8pm"),
    "Country": ("China", "India", "Brazil", "Germany", "Japan", "Canada", "France", "Mexico", "Kenya", "Spain"),
    "Region": ("North America", "Europe", "Asia", "Africa", "Oceania", "Latin America"),
    "Product": ("Laptops", "Phones", "Tablets", "Monitors", "Cameras", "Headphones", "Printers"),
    "Department": ("Sales", "Marketing", "Research", "Support", "Finance", "Legal"),
    "Language": ("Python", "Java", "Go", "Rust", "C++", "TypeScript", "Kotlin"),
}
ORDERED = ("Quarter", "Month", "Weekday", "Hour")
UNORDERED = ("Country", "Region", "Product", "Department", "Language")
GROUPS = (
    ("2022", "2023", "2024"), ("Online", "In-store", "Wholesale"), ("Actual", "Forecast", "Target"),
    ("Men", "Women"), ("Team A", "Team B", "Team C"), ("Urban", "Rural", "Suburban"),
    ("Basic", "Pro", "Enterprise"), ("Model X", "Model Y", "Model Z"), ("North", "South", "East", "West"),
)  # fmt: skip
PALETTES = (
    ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"),
    ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"),
    ("steelblue", "darkorange", "seagreen", "crimson", "slateblue", "goldenrod", "teal", "orchid"),
    ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576"),
    ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"),
)  # fmt: skip
EXTRA_COLORS = ("black", "gold", "navy", "maroon", "limegreen", "deepskyblue", "#7f3c8d", "#f2b701", "sienna")
CMAPS = ("Blues", "YlOrRd", "YlGnBu", "Greens", "Purples", "OrRd")
LEGEND_LOCS = ("upper left", "upper right", "lower right", "lower left", "center right", "upper center", "best")
MARKERS = ("o", "s", "^", "D", "v")
CITIES = ("Oslo", "Lima", "Cairo", "Seoul", "Denver", "Lyon", "Perth", "Nairobi")
BAR_TYPES = ("bar", "grouped_bar", "stacked_bar", "barh")


@dataclasses.dataclass(frozen=True)
class Series:
    """One named data series; for hist/box `values` are samples, for a heatmap one row."""

    name: str
    values: tuple
    color: str = ""
    x: tuple = ()  # scatter x values
    point_colors: tuple = ()  # pie wedge colours
    marker: str = ""
    linestyle: str = "-"


@dataclasses.dataclass(frozen=True)
class Annotation:
    text: str
    x: Any  # a category label or a number (the position along the category axis)
    y: float  # the value


@dataclasses.dataclass(frozen=True)
class Panel:
    """One axes. `scale`/`limits` apply to the value axis (x for barh, y otherwise)."""

    type: str
    series: tuple[Series, ...]
    categories: tuple = ()  # x values, bar categories, pie labels, heatmap columns
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    legend: bool = False
    legend_loc: str = "best"
    scale: str = "linear"
    limits: tuple | None = None
    grid: bool = False
    annotations: tuple[Annotation, ...] = ()
    value_labels: bool = False  # bar_label on bars, numbers in heatmap cells
    cmap: str = "Blues"
    bins: int = 10


@dataclasses.dataclass(frozen=True)
class ChartSpec:
    panels: tuple[Panel, ...]
    figsize: tuple[float, float] = (6.4, 4.8)
    layout: tuple[int, int] = (1, 1)
    suptitle: str = ""


def _lit(value) -> str:
    """A Python literal (JSON is a subset for str/number lists), keeping non-ASCII readable."""
    return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)


def value_axis(panel: Panel) -> str:
    return "x" if panel.type == "barh" else "y"


def panel_position(spec: ChartSpec, p: int) -> str:
    """'subplot 2 (top right)' for multi-panel figures, '' for a single panel."""
    rows, cols = spec.layout
    if len(spec.panels) == 1:
        return ""
    r, c = divmod(p, cols)
    vertical = ("top", "bottom") if rows == 2 else ("",)
    horizontal = {1: ("",), 2: ("left", "right"), 3: ("left", "middle", "right")}[cols]
    return f"subplot {p + 1} ({' '.join(w for w in (vertical[r], horizontal[c]) if w)})"


def where(spec: ChartSpec, p: int, element: str) -> str:
    """A location string: the element, qualified by its subplot in multi-panel figures."""
    position = panel_position(spec, p)
    return f"{element} in {position}" if position else element


class _Printer:
    """Prints one panel as the statements a model would write, painting the probed element."""

    def __init__(self, panel: Panel, p: int, probe):
        self.pn, self.p, self.probe = panel, p, probe

    def hit(self, *address) -> bool:
        return self.probe == (address[0], self.p, *address[1:])

    def color(self, i: int, series: Series) -> str:
        return PROBE_COLOR if self.hit("series", i) or self.hit("data") else series.color

    def pk(self, *address) -> str:
        return f", color={_lit(PROBE_COLOR)}" if self.hit(*address) else ""

    def lines(self) -> list[str]:
        kind = self.pn.type
        body = self._bars() if kind in BAR_TYPES else getattr(self, "_" + kind)()
        return body + self._decorations() + self._point_probe()

    def _bars(self) -> list[str]:
        pn, out = self.pn, []
        n, grouped, fn = len(pn.series), pn.type == "grouped_bar", "barh" if pn.type == "barh" else "bar"
        if grouped:
            out += [f"x = np.arange({len(pn.categories)})", f"width = {round(0.8 / n, 3):g}"]
        bottom = [0] * len(pn.categories)
        for i, s in enumerate(pn.series):
            x, extra = _lit(pn.categories), ""
            if grouped:
                offset = i - (n - 1) / 2
                scale = "width" if abs(offset) == 1 else f"{abs(offset):g} * width"
                x = "x" if offset == 0 else f"x {'-' if offset < 0 else '+'} {scale}"
                extra = ", width"
            if pn.type == "stacked_bar" and i:
                extra += f", bottom={_lit(bottom)}"
            bars = "bars = " if pn.value_labels else ""
            out.append(f"{bars}ax.{fn}({x}, {_lit(s.values)}{extra}, label={_lit(s.name)}, color={_lit(self.color(i, s))})")
            bottom = [round(b + v, 6) for b, v in zip(bottom, s.values)]
        if grouped:
            out += ["ax.set_xticks(x)", f"ax.set_xticklabels({_lit(pn.categories)})"]
        if pn.value_labels:
            out.append("ax.bar_label(bars, padding=2, fontsize=8)")
        return out

    def _line(self) -> list[str]:
        out = []
        for i, s in enumerate(self.pn.series):
            marker = f", marker={_lit(s.marker)}" if s.marker else ""
            out.append(
                f"ax.plot({_lit(self.pn.categories)}, {_lit(s.values)}{marker}, linestyle={_lit(s.linestyle)}, "
                f"linewidth=2, label={_lit(s.name)}, color={_lit(self.color(i, s))})"
            )
        return out

    def _scatter(self) -> list[str]:
        return [
            f"ax.scatter({_lit(s.x)}, {_lit(s.values)}, s=40, marker={_lit(s.marker or 'o')}, alpha=0.85, "
            f"label={_lit(s.name)}, color={_lit(self.color(i, s))})"
            for i, s in enumerate(self.pn.series)
        ]

    def _pie(self) -> list[str]:
        s = self.pn.series[0]
        whole = self.hit("series", 0) or self.hit("data")
        colors = [PROBE_COLOR if whole or self.hit("point", 0, j) else c for j, c in enumerate(s.point_colors)]
        out = [
            f"wedges, texts, autotexts = ax.pie({_lit(s.values)}, labels={_lit(self.pn.categories)}, "
            f'colors={_lit(colors)}, autopct="%1.1f%%", startangle=90)',
            'ax.axis("equal")',
        ]
        if self.hit("cat_ticks"):
            out.append(f"for text in texts:\n    text.set_color({_lit(PROBE_COLOR)})")
        return out

    def _hist(self) -> list[str]:
        alpha = 0.75 if len(self.pn.series) == 1 else 0.55
        return [
            f"ax.hist({_lit(s.values)}, bins={self.pn.bins}, alpha={alpha}, edgecolor=\"white\", "
            f"label={_lit(s.name)}, color={_lit(self.color(i, s))})"
            for i, s in enumerate(self.pn.series)
        ]

    def _area(self) -> list[str]:
        out, x = [], _lit(self.pn.categories)
        for i, s in enumerate(self.pn.series):
            color = _lit(self.color(i, s))
            out.append(f"ax.fill_between({x}, {_lit(s.values)}, alpha=0.35, color={color})")
            out.append(f"ax.plot({x}, {_lit(s.values)}, linewidth=2, label={_lit(s.name)}, color={color})")
        return out

    def _stacked_area(self) -> list[str]:
        pn = self.pn
        values = ", ".join(_lit(s.values) for s in pn.series)
        colors = [self.color(i, s) for i, s in enumerate(pn.series)]
        labels = [s.name for s in pn.series]
        return [f"ax.stackplot({_lit(pn.categories)}, {values}, labels={_lit(labels)}, colors={_lit(colors)}, alpha=0.85)"]

    def _box(self) -> list[str]:
        pn = self.pn
        colors = [self.color(i, s) for i, s in enumerate(pn.series)]
        return [
            f"bp = ax.boxplot({_lit([list(s.values) for s in pn.series])}, patch_artist=True, widths=0.6)",
            f'for patch, color in zip(bp["boxes"], {_lit(colors)}):\n    patch.set_facecolor(color)',
            f"ax.set_xticks({_lit(list(range(1, len(pn.series) + 1)))})",
            f"ax.set_xticklabels({_lit([s.name for s in pn.series])})",
        ]

    def _heatmap(self) -> list[str]:
        pn = self.pn
        rows, cols = len(pn.series), len(pn.categories)
        values = [v for s in pn.series for v in s.values]
        out = [
            "data = np.array([\n" + "".join(f"    {_lit(s.values)},\n" for s in pn.series) + "])",
            f'im = ax.imshow(data, cmap={_lit(pn.cmap)}, aspect="auto")',
            "fig.colorbar(im, ax=ax)",
            f"ax.set_xticks(range({cols}))",
            f"ax.set_xticklabels({_lit(pn.categories)})",
            f"ax.set_yticks(range({rows}))",
            f"ax.set_yticklabels({_lit([s.name for s in pn.series])})",
        ]
        if pn.value_labels:
            threshold = (min(values) + max(values)) / 2
            out.append(
                f"for i in range({rows}):\n    for j in range({cols}):\n"
                f'        ax.text(j, i, f"{{data[i, j]:g}}", ha="center", va="center", fontsize=8,\n'
                f'                color="white" if data[i, j] > {threshold:g} else "black")'
            )
        return out

    def _decorations(self) -> list[str]:
        pn, out, vaxis = self.pn, [], value_axis(self.pn)
        caxis = {"x": "y", "y": "x"}[vaxis]
        if pn.scale != "linear":
            out.append(f"ax.set_{vaxis}scale({_lit(pn.scale)})")
        if pn.limits:
            out.append(f"ax.set_{vaxis}lim({pn.limits[0]:g}, {pn.limits[1]:g})")
        if pn.title:
            out.append(f'ax.set_title({_lit(pn.title)}, fontsize=12, fontweight="bold"{self.pk("title")})')
        for axis in ("x", "y"):
            label = getattr(pn, f"{axis}label")
            if label:
                out.append(f"ax.set_{axis}label({_lit(label)}{self.pk(axis + 'label')})")
        long_labels = pn.type in BAR_TYPES[:3] + ("line", "area", "stacked_area", "heatmap") and any(
            len(str(c)) > 6 for c in pn.categories
        )
        if long_labels:
            out.append('ax.tick_params(axis="x", labelrotation=30)')
        for address, axis in (("cat_ticks", caxis), ("val_ticks", vaxis)):
            if self.hit(address) and pn.type != "pie":
                out.append(f'ax.tick_params(axis="{axis}", which="both", labelcolor={_lit(PROBE_COLOR)})')
        if pn.grid:
            which = {"box": "y", "hist": "y", "barh": "x"}.get(pn.type, "y" if pn.type in BAR_TYPES else "both")
            out.append(f'ax.grid(True, axis="{which}", linestyle="--", alpha=0.6{self.pk("grid")})')
            if pn.type in BAR_TYPES + ("hist", "box"):
                out.append("ax.set_axisbelow(True)")
        for k, a in enumerate(pn.annotations):
            xy, offset = (a.y, a.x) if pn.type == "barh" else (a.x, a.y), (22, 0) if pn.type == "barh" else (0, 18)
            arrow = PROBE_COLOR if self.hit("annotation", k) else "dimgray"
            out.append(
                f"ax.annotate({_lit(a.text)}, xy=({_lit(xy[0])}, {_lit(xy[1])}), xytext={offset}, "
                f'textcoords="offset points", ha="center", va="center", fontsize=9,\n'
                f'            arrowprops=dict(arrowstyle="->", color={_lit(arrow)}){self.pk("annotation", k)})'
            )
        if pn.legend:
            if self.hit("legend"):
                out += [
                    f"leg = ax.legend(loc={_lit(pn.legend_loc)}, fontsize=9)",
                    f"leg.get_frame().set_edgecolor({_lit(PROBE_COLOR)})",
                    f"for text in leg.get_texts():\n    text.set_color({_lit(PROBE_COLOR)})",
                ]
            else:
                out.append(f"ax.legend(loc={_lit(pn.legend_loc)}, fontsize=9)")
        return out

    def _point_probe(self) -> list[str]:
        """Paints one bar, marker or cell (heatmap rows too); after the legend so its handles keep their colours."""
        pn, probe = self.pn, _lit(PROBE_COLOR)
        if pn.type == "heatmap":
            rows = [i for i in range(len(pn.series)) if self.hit("data") or self.hit("series", i)]
            if rows:
                corner, size = f"(-0.5, {rows[0] - 0.5})", f"{len(pn.categories)}, {len(rows)}"
                return [f"ax.add_patch(plt.Rectangle({corner}, {size}, color={probe}))"]
        if not (self.probe and self.probe[0] == "point" and self.probe[1] == self.p):
            return []
        i, j = self.probe[2:]
        if pn.type in BAR_TYPES:
            return [f"ax.patches[{i * len(pn.categories) + j}].set_facecolor({probe})"]
        if pn.type in ("line", "scatter"):
            s = pn.series[i]
            x = s.x[j] if pn.type == "scatter" else pn.categories[j]
            style = f'marker="o", markersize=10, linestyle="none", color={probe}, zorder=5'
            return [f"ax.plot([{_lit(x)}], [{_lit(s.values[j])}], {style})"]
        if pn.type == "heatmap":
            return [f"ax.add_patch(plt.Rectangle(({j} - 0.5, {i} - 0.5), 1, 1, color={probe}))"]
        return []  # pie wedges and boxes are painted where they are drawn


def print_code(spec: ChartSpec, probe: tuple | None = None) -> str:
    """The spec as a matplotlib script; `probe` paints that one element PROBE_COLOR."""
    numpy = any(pn.type in ("grouped_bar", "heatmap") for pn in spec.panels)
    out = ["import matplotlib.pyplot as plt"] + (["import numpy as np"] if numpy else []) + [""]
    (rows, cols), (w, h) = spec.layout, spec.figsize
    if len(spec.panels) == 1:
        out.append(f"fig, ax = plt.subplots(figsize=({w:g}, {h:g}))")
    else:
        out.append(f"fig, axes = plt.subplots({rows}, {cols}, figsize=({w:g}, {h:g}))")
    for p, panel in enumerate(spec.panels):
        if len(spec.panels) > 1:
            out += ["", f"ax = axes[{f'{p // cols}, {p % cols}' if rows > 1 and cols > 1 else p}]"]
        out += _Printer(panel, p, probe).lines()
    if spec.suptitle:
        color = f", color={_lit(PROBE_COLOR)}" if probe == ("suptitle",) else ""
        out.append(f'fig.suptitle({_lit(spec.suptitle)}, fontsize=14, fontweight="bold"{color})')
    return "\n".join(out + ["", "plt.tight_layout()", "plt.show()", ""])


# ----------------------------------------------------------------------------- generators


def _round(value: float, decimals: int):
    return int(round(value)) if decimals == 0 else round(value, decimals)


def _values(rng: random.Random, metric, n: int, walk: bool = False) -> tuple:
    _, _, low, high, decimals = metric
    if not walk:
        return tuple(_round(rng.uniform(low, high), decimals) for _ in range(n))
    value, out = rng.uniform(low, low + 0.6 * (high - low)), []
    for _ in range(n):
        out.append(_round(value, decimals))
        value = min(high, max(low, value + rng.uniform(-0.15, 0.2) * (high - low)))
    return tuple(out)


def _categories(rng: random.Random, dim: str, n: int) -> tuple:
    labels = DIMENSIONS[dim]
    n = min(n, len(labels))
    if dim in ORDERED:
        start = rng.randrange(len(labels) - n + 1)
        return labels[start : start + n]
    return tuple(rng.sample(labels, n))


def _years(rng: random.Random, n: int) -> tuple:
    start = rng.randrange(2005, 2025 - n)
    return tuple(range(start, start + n))


def _title(rng: random.Random, metric, dim: str) -> str:
    name, year = metric[0], rng.randrange(2016, 2025)
    return rng.choice((
        f"{name} by {dim.lower()}", f"{name} by {dim.lower()}, {year}",
        f"{name} per {dim.lower()} in {rng.choice(CITIES)}", f"{year} {name.lower()} by {dim.lower()}",
    ))  # fmt: skip


def _value_label(metric) -> str:
    return f"{metric[0]} ({metric[1]})"


def _names(rng: random.Random, low: int, high: int) -> tuple:
    group = rng.choice([g for g in GROUPS if len(g) >= low])
    return group[: rng.randint(low, min(high, len(group)))]


def _common(rng: random.Random) -> dict:
    return {"grid": rng.random() < 0.5, "legend_loc": rng.choice(LEGEND_LOCS)}


def _peak(rng: random.Random, x: tuple, values: tuple) -> tuple[Annotation, ...]:
    if rng.random() > 0.35:
        return ()
    j = max(range(len(values)), key=values.__getitem__)
    return (Annotation(rng.choice(("Peak", "Highest", "Record", f"{values[j]:g}")), x[j], values[j]),)


def _axis_options(rng: random.Random, values, allow_log: bool = True) -> dict:
    roll = rng.random()
    if allow_log and roll < 0.1 and min(values) > 0:
        return {"scale": "log"}
    if roll < 0.3 and min(values) >= 0:
        return {"limits": (0, float(int(max(values) * 1.3) + 1))}
    return {}


def _bar(rng, pal):
    metric, dim = rng.choice(METRICS), rng.choice(ORDERED[:3] + UNORDERED)
    cats = _categories(rng, dim, rng.randint(3, 7))
    values = _values(rng, metric, len(cats))
    labels = rng.random() < 0.3
    return Panel(
        "bar", (Series(metric[0], values, pal[0]),), cats, _title(rng, metric, dim),
        dim if rng.random() < 0.7 else "", _value_label(metric), value_labels=labels,
        annotations=() if labels else _peak(rng, cats, values), **_axis_options(rng, values), **_common(rng),
    )  # fmt: skip


def _multi_bar(kind: str):
    def make(rng, pal):
        metric, dim = rng.choice(METRICS), rng.choice(ORDERED[:3] + UNORDERED)
        cats = _categories(rng, dim, rng.randint(3, 5))
        series = tuple(Series(nm, _values(rng, metric, len(cats)), pal[i]) for i, nm in enumerate(_names(rng, 2, 3)))
        return Panel(kind, series, cats, _title(rng, metric, dim), dim, _value_label(metric), legend=True, **_common(rng))

    return make


def _barh(rng, pal):
    metric, dim = rng.choice(METRICS), rng.choice(UNORDERED)
    cats = _categories(rng, dim, rng.randint(4, 7))
    values = _values(rng, metric, len(cats))
    labels = rng.random() < 0.3
    return Panel(
        "barh", (Series(metric[0], values, pal[rng.randrange(4)]),), cats, _title(rng, metric, dim),
        _value_label(metric), dim if rng.random() < 0.5 else "", value_labels=labels,
        annotations=() if labels else _peak(rng, cats, values), **_axis_options(rng, values, False), **_common(rng),
    )  # fmt: skip


def _x_axis(rng, n: int) -> tuple[tuple, str]:
    if rng.random() < 0.6:
        return _years(rng, n), "Year"
    return _categories(rng, "Month", n), "Month"


def _line(rng, pal):
    metric = rng.choice(METRICS)
    x, dim = _x_axis(rng, rng.randint(5, 10))
    names = _names(rng, 2, 3) if rng.random() < 0.6 else (metric[0],)
    styles = ("-",) * 4 + ("--", "-.", ":")
    series = tuple(
        Series(nm, _values(rng, metric, len(x), walk=True), pal[i], marker=rng.choice(MARKERS + ("",)),
               linestyle=rng.choice(styles))
        for i, nm in enumerate(names)
    )  # fmt: skip
    single = len(series) == 1
    values = [v for s in series for v in s.values]
    return Panel(
        "line", series, x, _title(rng, metric, dim), dim, _value_label(metric),
        legend=not single or rng.random() < 0.4, annotations=_peak(rng, x, series[0].values) if single else (),
        **_axis_options(rng, values), **_common(rng),
    )  # fmt: skip


def _scatter(rng, pal):
    my, mx = rng.sample(METRICS, 2)
    names = _names(rng, 2, 3) if rng.random() < 0.5 else ("Observations",)
    series = []
    for i, nm in enumerate(names):
        x = [mx[2] + rng.random() * (mx[3] - mx[2]) for _ in range(rng.randint(10, 22))]
        slope, offset = rng.uniform(0.2, 0.7), rng.uniform(0.0, 0.3)
        y = [my[2] + (my[3] - my[2]) * min(1.0, max(0.0, offset + slope * (v - mx[2]) / (mx[3] - mx[2]) + rng.gauss(0, 0.08)))
             for v in x]  # fmt: skip
        xs, ys = tuple(_round(v, mx[4]) for v in x), tuple(_round(v, my[4]) for v in y)
        series.append(Series(nm, ys, pal[i], x=xs, marker=MARKERS[i] if len(names) > 1 else "o"))
    return Panel(
        "scatter", tuple(series), (), f"{my[0]} vs {mx[0].lower()}", _value_label(mx), _value_label(my),
        legend=len(names) > 1, annotations=_peak(rng, series[0].x, series[0].values) if len(names) == 1 else (),
        **_common(rng),
    )  # fmt: skip


def _pie(rng, pal):
    metric, dim = rng.choice(METRICS), rng.choice(UNORDERED)
    cats = _categories(rng, dim, rng.randint(3, 6))
    weights = [rng.uniform(1, 5) for _ in cats]
    values = tuple(round(100 * w / sum(weights), 1) for w in weights)
    year = rng.randrange(2016, 2025)
    title = rng.choice((f"Share of {metric[0].lower()} by {dim.lower()}", f"{metric[0]} by {dim.lower()}, {year}"))
    return Panel("pie", (Series(metric[0], values, point_colors=pal[: len(cats)]),), cats, title)


def _hist(rng, pal):
    metric = rng.choice(METRICS)
    _, _, low, high, decimals = metric
    names = _names(rng, 2, 2) if rng.random() < 0.4 else (metric[0],)
    series = []
    for i, nm in enumerate(names):
        mu, sd = rng.uniform(low + 0.3 * (high - low), high - 0.3 * (high - low)), (high - low) * rng.uniform(0.06, 0.15)
        samples = tuple(round(rng.gauss(mu, sd), max(1, decimals)) for _ in range(rng.randint(60, 110)))
        series.append(Series(nm, samples, pal[i]))
    return Panel(
        "hist", tuple(series), (), f"Distribution of {metric[0].lower()}", _value_label(metric),
        rng.choice(("Frequency", "Count")), legend=len(names) > 1, bins=rng.randint(8, 18), **_common(rng),
    )  # fmt: skip


def _area(kind: str):
    def make(rng, pal):
        metric = rng.choice(METRICS)
        x, dim = _x_axis(rng, rng.randint(6, 10))
        stacked = kind == "stacked_area"
        names = _names(rng, 2, 4 if stacked else 2) if stacked or rng.random() < 0.5 else (metric[0],)
        series = tuple(Series(nm, _values(rng, metric, len(x), walk=True), pal[i]) for i, nm in enumerate(names))
        title = _title(rng, metric, dim)
        return Panel(kind, series, x, title, dim, _value_label(metric), legend=len(names) > 1, **_common(rng))

    return make


def _box(rng, pal):
    metric, dim = rng.choice(METRICS), rng.choice(UNORDERED)
    _, _, low, high, decimals = metric
    series = []
    for i, nm in enumerate(_categories(rng, dim, rng.randint(3, 5))):
        mu, sd = rng.uniform(low + 0.2 * (high - low), high - 0.2 * (high - low)), (high - low) * rng.uniform(0.05, 0.12)
        series.append(Series(nm, tuple(round(rng.gauss(mu, sd), max(1, decimals)) for _ in range(rng.randint(15, 30))), pal[i]))
    title = f"Distribution of {metric[0].lower()} by {dim.lower()}"
    return Panel("box", tuple(series), (), title, dim, _value_label(metric), **_common(rng))


def _heatmap(rng, pal):
    metric = rng.choice(METRICS)
    row_dim, col_dim = rng.choice((("Weekday", "Hour"), ("Country", "Month"), ("Product", "Quarter"), ("Region", "Month")))
    rows, cols = _categories(rng, row_dim, rng.randint(4, 6)), _categories(rng, col_dim, rng.randint(4, 8))
    series = tuple(Series(r, tuple(rng.randrange(0, 100) for _ in cols)) for r in rows)
    return Panel(
        "heatmap", series, cols, f"{metric[0]} by {row_dim.lower()} and {col_dim.lower()}",
        value_labels=rng.random() < 0.6, cmap=rng.choice(CMAPS),
    )  # fmt: skip


PANELS = {
    "bar": _bar, "grouped_bar": _multi_bar("grouped_bar"), "stacked_bar": _multi_bar("stacked_bar"), "barh": _barh,
    "line": _line, "scatter": _scatter, "pie": _pie, "hist": _hist, "area": _area("area"),
    "stacked_area": _area("stacked_area"), "box": _box, "heatmap": _heatmap,
}  # fmt: skip
FIGSIZES = {"pie": ((6, 6), (6.4, 5.2)), "heatmap": ((8, 5), (7, 4.8)), "barh": ((7, 5), (8, 5))}
LAYOUTS = {(1, 2): (11, 4.5), (2, 1): (7, 8), (2, 2): (11, 8), (1, 3): (14, 4.2)}


def _task(spec: ChartSpec, name: str, seed: int) -> Task:
    return Task(kind="chart", code=print_code(spec), source=f"chart/{name}", seed=seed, spec=spec)


def _single(name: str):
    def generate_one(rng: random.Random, seed: int) -> Task:
        panel = PANELS[name](rng, rng.choice(PALETTES))
        figsize = rng.choice(FIGSIZES.get(name, ((6.4, 4.8), (8, 5), (7, 4.5))))
        return _task(ChartSpec((panel,), figsize), name, seed)

    generate_one.__doc__ = f"A single-panel {name} chart."
    return generate_one


def _subplots(rng: random.Random, seed: int) -> Task:
    layout = rng.choice(sorted(LAYOUTS))
    pal = rng.choice(PALETTES)
    panels = tuple(PANELS[rng.choice(sorted(PANELS))](rng, pal) for _ in range(layout[0] * layout[1]))
    suptitle = rng.choice(("", "", f"Key indicators, {rng.randrange(2016, 2025)}", "Quarterly report", "Market overview"))
    return _task(ChartSpec(panels, LAYOUTS[layout], layout, suptitle), "subplots", seed)


GENERATORS = {**{name: _single(name) for name in PANELS}, "subplots": _subplots}


def generate(rng: random.Random, seed: int) -> Task:
    """A chart task of a random type (uniform over GENERATORS), reproducible from `rng`'s state."""
    return GENERATORS[rng.choice(sorted(GENERATORS))](rng, seed)
