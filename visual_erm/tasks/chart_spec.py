"""The ChartSpec data model: what a chart is, independent of how it is printed or generated.

Generators (`visual_erm.tasks.chart`) build specs, the printer
(`visual_erm.tasks.chart_print`) turns them into code and error injection
(`visual_erm.perturb.chart`) edits them; all three share these types and the
helpers that name a panel's place in the figure.
"""
from __future__ import annotations

import dataclasses
from typing import Any

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
