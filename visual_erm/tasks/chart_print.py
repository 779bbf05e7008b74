"""The chart code printer: `print_code(spec, probe=address)` writes a ChartSpec as a matplotlib script.

Ground truth is printed from a spec, never written as text, so error injection
(`visual_erm.perturb.chart`) edits the spec and reprints. A probe paints exactly
one element in PROBE_COLOR and changes nothing else; the pixel check renders
both codes to find that element's pixels.

Probe addresses (p is the panel index, i a series, j a point/category):
  ("title", p) ("xlabel", p) ("ylabel", p) ("legend", p) ("grid", p) ("suptitle",)
  ("cat_ticks", p) / ("val_ticks", p): tick labels of the category / value axis
  ("series", p, i)  ("point", p, i, j)  ("data", p): every series  ("annotation", p, k)
"""
from __future__ import annotations

import json

from visual_erm.tasks.base import PROBE_COLOR
from visual_erm.tasks.chart_spec import BAR_TYPES, ChartSpec, Panel, Series, value_axis


def _lit(value) -> str:
    """A Python literal (JSON is a subset for str/number lists), keeping non-ASCII readable."""
    return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)


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
            out.append(f"{bars}ax.{fn}({x}, {_lit(s.values)}{extra}, label={_lit(s.name)}, "
                       f"color={_lit(self.color(i, s))})")
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
        return [f"ax.stackplot({_lit(pn.categories)}, {values}, labels={_lit(labels)}, "
                f"colors={_lit(colors)}, alpha=0.85)"]

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
