"""Chart tasks: seeded generators of realistic ChartSpecs, printed to ground-truth code.

The spec types live in `visual_erm.tasks.chart_spec`, the word lists in
`visual_erm.tasks.chart_vocab` and the printer (with its probe addresses) in
`visual_erm.tasks.chart_print`; they are re-exported here so this module stays
the one import for chart tasks (`from visual_erm.tasks.chart import print_code`).
"""
from __future__ import annotations

import random

from visual_erm.tasks.base import Task
from visual_erm.tasks.chart_print import print_code
from visual_erm.tasks.chart_spec import (
    BAR_TYPES,
    Annotation,
    ChartSpec,
    Panel,
    Series,
    panel_position,
    value_axis,
    where,
)
from visual_erm.tasks.chart_vocab import (
    CITIES,
    CMAPS,
    DIMENSIONS,
    EXTRA_COLORS,
    GROUPS,
    LEGEND_LOCS,
    MARKERS,
    METRICS,
    ORDERED,
    PALETTES,
    UNORDERED,
)  # fmt: skip

__all__ = [
    "BAR_TYPES", "CITIES", "CMAPS", "DIMENSIONS", "EXTRA_COLORS", "FIGSIZES", "GENERATORS", "GROUPS", "LAYOUTS",
    "LEGEND_LOCS", "MARKERS", "METRICS", "ORDERED", "PALETTES", "PANELS", "UNORDERED", "Annotation", "ChartSpec",
    "Panel", "Series", "generate", "panel_position", "print_code", "value_axis", "where",
]  # fmt: skip


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
        return Panel(kind, series, cats, _title(rng, metric, dim), dim, _value_label(metric), legend=True,
                     **_common(rng))

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
        y = [my[2] + (my[3] - my[2])
             * min(1.0, max(0.0, offset + slope * (v - mx[2]) / (mx[3] - mx[2]) + rng.gauss(0, 0.08)))
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
        mu, sd = (rng.uniform(low + 0.3 * (high - low), high - 0.3 * (high - low)),
                  (high - low) * rng.uniform(0.06, 0.15))
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
        mu, sd = (rng.uniform(low + 0.2 * (high - low), high - 0.2 * (high - low)),
                  (high - low) * rng.uniform(0.05, 0.12))
        values = tuple(round(rng.gauss(mu, sd), max(1, decimals)) for _ in range(rng.randint(15, 30)))
        series.append(Series(nm, values, pal[i]))
    title = f"Distribution of {metric[0].lower()} by {dim.lower()}"
    return Panel("box", tuple(series), (), title, dim, _value_label(metric), **_common(rng))


def _heatmap(rng, pal):
    metric = rng.choice(METRICS)
    row_dim, col_dim = rng.choice((("Weekday", "Hour"), ("Country", "Month"), ("Product", "Quarter"),
                                   ("Region", "Month")))
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
    suptitle = rng.choice(("", "", f"Key indicators, {rng.randrange(2016, 2025)}", "Quarterly report",
                           "Market overview"))
    return _task(ChartSpec(panels, LAYOUTS[layout], layout, suptitle), "subplots", seed)


GENERATORS = {**{name: _single(name) for name in PANELS}, "subplots": _subplots}


def generate(rng: random.Random, seed: int) -> Task:
    """A chart task of a random type (uniform over GENERATORS), reproducible from `rng`'s state."""
    return GENERATORS[rng.choice(sorted(GENERATORS))](rng, seed)
