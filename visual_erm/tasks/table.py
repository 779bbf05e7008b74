"""Table tasks: a structured table model, its Markdown/HTML printers, and seeded generators.

The model (not the printed text) is the ground truth, so error injection
(`visual_erm.perturb.table`) edits cells, rows and columns and reprints. The HTML
printer writes exactly what markdown-it makes of the Markdown printer's output, so
a merge-free table renders identically either way, and `probe=` paints a cell, row
or column background PROBE_COLOR to find that element's pixels (footprints).
"""
from __future__ import annotations

import dataclasses
import html
import random
from collections.abc import Iterable, Sequence

from visual_erm.tasks.base import PROBE_COLOR, Task

ALIGNS = ("left", "center", "right")
Address = tuple | str  # ("cell", r, c) | ("row", r) | ("column", c) | "caption"; r counts header rows first


@dataclasses.dataclass
class Cell:
    """One table cell; numeric cells keep `value` and the `fmt` that printed it."""

    text: str
    value: float | None = None
    fmt: str = ""  # str.format pattern for `value`, e.g. "{:,.0f}", "{:.1f}%", "${:,.2f}"
    colspan: int = 1
    rowspan: int = 1
    bold: bool = False
    italic: bool = False
    align: str | None = None  # None: the column's alignment (merged cells are centred)
    key: int | None = dataclasses.field(default=None, compare=False, repr=False)  # identity for editors

    @classmethod
    def number(cls, value: float, fmt: str, **kwargs) -> Cell:
        return cls(fmt.format(value), value, fmt, **kwargs)

    @property
    def numeric(self) -> bool:
        return self.value is not None


@dataclasses.dataclass
class TableModel:
    """Rows list only the cells that start in them (HTML semantics); `align` is per grid column."""

    header: list[list[Cell]]
    body: list[list[Cell]]
    align: list[str]
    caption: str | None = None

    @property
    def rows(self) -> list[list[Cell]]:
        return self.header + self.body

    @property
    def ncols(self) -> int:
        return len(self.align)

    @property
    def has_merges(self) -> bool:
        return any(c.colspan > 1 or c.rowspan > 1 for row in self.rows for c in row)


def layout(model: TableModel) -> dict[tuple[int, int], tuple[int, int]]:
    """Grid position (r, c) -> (row, index in row) of the cell that covers it."""
    covered: dict[tuple[int, int], tuple[int, int]] = {}
    for r, row in enumerate(model.rows):
        c = 0
        for i, cell in enumerate(row):
            while (r, c) in covered:
                c += 1
            for dr in range(cell.rowspan):
                for dc in range(cell.colspan):
                    covered[(r + dr, c + dc)] = (r, i)
            c += cell.colspan
    return covered


def origins(model: TableModel) -> dict[tuple[int, int], tuple[int, int]]:
    """(row, index in row) -> top-left grid position of that cell."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for pos, key in sorted(layout(model).items()):
        found.setdefault(key, pos)
    return found


def _header_words(model: TableModel, c: int) -> list[str]:
    covered, words = layout(model), []
    for r in range(len(model.header)):
        row, i = covered[(r, c)]
        text = model.rows[row][i].text.strip()
        if text and (not words or words[-1] != text):
            words.append(text)
    return words


def column_name(model: TableModel, c: int) -> str:
    """The lowest header word over column c ('Q1'), with the group above where that repeats
    ('FY2023 Q1'), or 'column 3' when the header is blank."""
    words = _header_words(model, c)
    if not words:
        return f"column {c + 1}"
    lowest = [w[-1] if w else None for w in map(lambda k: _header_words(model, k), range(model.ncols))]
    return words[-1] if lowest.count(words[-1]) == 1 else " ".join(words)


def column_phrase(model: TableModel, c: int) -> str:
    name = column_name(model, c)
    return name if name.startswith("column ") else f"column '{name}'"


def row_label(model: TableModel, r: int) -> str:
    """The name of grid row r: its first wordy cell among the first two columns ('' if none)."""
    covered = layout(model)
    for c in range(min(2, model.ncols)):
        row, i = covered.get((r, c), (None, None))
        if row is not None and row == r:
            cell = model.rows[row][i]
            if not cell.numeric and cell.text.strip() and cell.colspan == 1:
                return cell.text.strip()
    return ""


def row_phrase(model: TableModel, r: int) -> str:
    """'row 3 ('Europe')' for body rows (numbered from 1), 'header row 1' for header rows."""
    if r < len(model.header):
        return f"header row {r + 1}"
    label = row_label(model, r)
    number = r - len(model.header) + 1
    return f"row {number} ('{label}')" if label else f"row {number}"


def _probed(model: TableModel, probe) -> tuple[set[tuple[int, int]], bool]:
    """Cells (row, index) the probe paints, and whether it paints the caption."""
    if probe is None:
        return set(), False
    addresses = [probe] if isinstance(probe, str) or (probe and isinstance(probe[0], str)) else list(probe)
    covered, cells, caption = layout(model), set(), False
    for address in addresses:
        if address == "caption":
            caption = True
        elif address[0] == "cell":
            cells.add(covered[(address[1], address[2])])
        elif address[0] == "row":
            cells |= {key for (r, _), key in covered.items() if r == address[1]}
        elif address[0] == "column":
            cells |= {key for (_, c), key in covered.items() if c == address[1]}
        else:
            raise ValueError(f"unknown table address {address!r}")
    return cells, caption


def _cell_align(model: TableModel, cell: Cell, c: int) -> str:
    if cell.align:
        return cell.align
    return "center" if cell.colspan > 1 else model.align[c]


def _inline_html(cell: Cell) -> str:
    text = html.escape(cell.text, quote=False)
    if cell.bold:
        text = f"<strong>{text}</strong>"
    if cell.italic:
        text = f"<em>{text}</em>"
    return text


def to_html(model: TableModel, probe: Address | Sequence[Address] | None = None) -> str:
    """HTML table; `probe` paints the addressed cells' background (the caption's text) PROBE_COLOR, nothing else."""
    painted, paint_caption = _probed(model, probe)
    starts = origins(model)
    lines = ["<table>"]
    if model.caption:
        style = f' style="color:{PROBE_COLOR}"' if paint_caption else ""  # a background would move the crop
        lines.append(f"<caption{style}>{html.escape(model.caption, quote=False)}</caption>")
    sections = (("thead", model.header, "th", 0), ("tbody", model.body, "td", len(model.header)))
    for section, rows, tag, offset in sections:
        if not rows:
            continue
        lines.append(f"<{section}>")
        for j, row in enumerate(rows):
            lines.append("<tr>")
            for i, cell in enumerate(row):
                r, c = starts[(offset + j, i)]
                spans = (("colspan", cell.colspan), ("rowspan", cell.rowspan))
                attrs = "".join(f' {k}="{v}"' for k, v in spans if v > 1)
                style = f"text-align:{_cell_align(model, cell, c)}"
                if (offset + j, i) in painted:
                    style += f";background:{PROBE_COLOR}"
                lines.append(f'<{tag}{attrs} style="{style}">{_inline_html(cell)}</{tag}>')
            lines.append("</tr>")
        lines.append(f"</{section}>")
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def _inline_markdown(cell: Cell) -> str:
    text = cell.text
    if cell.bold:
        text = f"**{text}**"
    if cell.italic:
        text = f"*{text}*"
    return text


def to_markdown(model: TableModel) -> str:
    """GFM pipe table (one header row, no merged cells, no caption: Markdown cannot say them)."""
    if model.has_merges or len(model.header) != 1 or model.caption:
        raise ValueError("Markdown tables have one header row, no merged cells and no caption")
    if any(c.align for row in model.rows for c in row):
        raise ValueError("Markdown aligns whole columns only")
    rule = {"left": ":---", "center": ":---:", "right": "---:"}
    lines = ["| " + " | ".join(_inline_markdown(c) for c in model.header[0]) + " |"]
    lines.append("|" + "|".join(rule[a] for a in model.align) + "|")
    lines += ["| " + " | ".join(_inline_markdown(c) for c in row) + " |" for row in model.body]
    return "\n".join(lines) + "\n"


def print_table(model: TableModel, markdown: bool) -> str:
    return to_markdown(model) if markdown else to_html(model)


# ---------------------------------------------------------------- generators

REGIONS = ["North America", "Europe", "Asia Pacific", "Latin America", "Middle East", "Africa", "Nordics", "Oceania"]
SEGMENTS = ["Hardware", "Software", "Services", "Licensing", "Consulting", "Support", "Cloud", "Devices"]
COURSES = ["Algebra", "Biology", "Chemistry", "History", "Physics", "Literature", "Art", "Geography",
           "Music", "Economics", "Spanish", "French", "Statistics", "Drama", "Ethics"]
PRODUCTS = ["Aurora", "Nimbus", "Vertex", "Zephyr", "Orion", "Pulse", "Summit", "Falcon", "Lumen", "Atlas"]
TEAMS = ["Riverside", "Northport", "Eastfield", "Harbor City", "Westbrook", "Oakridge", "Lakeview",
         "Stonebridge", "Millbrook", "Kingsford"]
STATIONS = ["Central", "Market Street", "University", "Riverside", "Airport", "Harbor", "Old Town",
            "Museum", "Stadium", "Parkway", "Hillcrest", "Union Square"]
COUNTRIES = ["Norway", "Portugal", "Chile", "Kenya", "Vietnam", "Canada", "Poland", "Peru", "Ghana",
             "Japan", "Mexico", "Austria", "India", "Morocco"]
VARIABLES = [("Age (years)", 20, 80, 1), ("Income ($k)", 25, 140, 1), ("Height (cm)", 150, 195, 1),
             ("Weight (kg)", 50, 110, 1), ("BMI", 18, 35, 2), ("Sleep (h)", 4, 10, 2),
             ("Resting HR (bpm)", 50, 95, 1), ("Commute (min)", 5, 90, 1)]
QUESTIONS = ["Service was prompt", "Staff were friendly", "Prices were fair", "Site was easy to use",
             "Delivery was on time", "Would recommend us", "Product met expectations"]


def _number_align(rng: random.Random) -> str:
    return "right" if rng.random() < 0.8 else "center"


def _header(names: Iterable[str], italic: bool = False) -> list[Cell]:
    return [Cell(n, italic=italic) for n in names]


def gen_financials(rng: random.Random, merged: bool) -> TableModel:
    """Revenue by region or segment over quarters, a bold total row, optional year group headers."""
    stubs = rng.sample(REGIONS if rng.random() < 0.5 else SEGMENTS, rng.randint(3, 6))
    first_year = rng.randint(2019, 2023)
    years = [first_year, first_year + 1] if merged and rng.random() < 0.5 else [first_year]
    quarters = ["Q1", "Q2", "Q3", "Q4"] if len(years) == 1 else ["H1", "H2"]
    fmt = rng.choice(["{:,.0f}", "${:,.0f}", "{:,.1f}"])
    periods = [(y, q) for y in years for q in quarters]
    with_total = rng.random() < 0.7
    body = []
    for stub in stubs:
        level = rng.uniform(200, 5000)
        values = [round(level * rng.uniform(0.85, 1.2), 1 if "1f" in fmt else 0) for _ in periods]
        row = [Cell(stub)] + [Cell.number(v, fmt) for v in values]
        if with_total:
            row.append(Cell.number(round(sum(values), 1), fmt))
        body.append(row)
    ncols = len(body[0])
    if rng.random() < 0.6:
        sums = [round(sum(row[c].value for row in body), 1) for c in range(1, ncols)]
        body.append([Cell("Total", bold=True)] + [Cell.number(v, fmt, bold=True) for v in sums])
    first = rng.choice(["Region" if stubs[0] in REGIONS else "Segment", ""])
    metric = rng.choice(["Revenue", "Net sales", "Operating profit", "Bookings"])
    if merged:
        top = [Cell(first, rowspan=2)] + [Cell(f"FY{y}", colspan=len(quarters)) for y in years]
        top += [Cell("Total", rowspan=2)] if with_total else []
        header = [top, _header(q for _, q in periods)]
    else:
        names = [first] + [f"{q} {y}" if len(years) > 1 or rng.random() < 0.3 else q for y, q in periods]
        header = [_header(names + (["Total"] if with_total else []))]
    align = ["left"] + [_number_align(rng)] * (ncols - 1)
    return TableModel(header, body, align, f"{metric} by quarter (USD thousands)")


def gen_statistics(rng: random.Random, merged: bool) -> TableModel:
    """Descriptive statistics of study variables: N, mean, SD, min, max (optionally grouped)."""
    variables = rng.sample(VARIABLES, rng.randint(3, 6))
    columns = ["N", "Mean", "SD", "Min", "Max"] if rng.random() < 0.6 else ["Mean", "SD", "Median"]
    body = []
    for name, low, high, digits in variables:
        fmt = f"{{:.{digits}f}}"
        lo, hi = sorted(rng.uniform(low, high) for _ in range(2))
        mean = rng.uniform(lo, hi)
        stats = {"N": rng.randint(80, 1200), "Mean": mean, "SD": (hi - lo) / rng.uniform(3, 6),
                 "Min": lo, "Max": hi, "Median": mean * rng.uniform(0.95, 1.05)}
        body.append([Cell(name)] + [Cell.number(stats[c], "{:,d}" if c == "N" else fmt) for c in columns])
    if merged:
        header = [[Cell("Variable", rowspan=2), Cell("Summary statistics", colspan=len(columns))], _header(columns)]
    else:
        header = [_header(["Variable"] + columns, italic=rng.random() < 0.2)]
    align = ["left"] + [_number_align(rng)] * len(columns)
    return TableModel(header, body, align, f"Table {rng.randint(1, 9)}. Descriptive statistics")


def gen_survey(rng: random.Random, merged: bool) -> TableModel:
    """Survey answers as percentages that sum to 100 per question."""
    answers = ["Agree", "Neutral", "Disagree"] if rng.random() < 0.6 else ["Yes", "No", "Unsure"]
    body = []
    for question in rng.sample(QUESTIONS, rng.randint(3, 6)):
        weights = [rng.uniform(0.2, 1.0) for _ in answers]
        shares = [round(100 * w / sum(weights), 1) for w in weights]
        shares[-1] = round(100 - sum(shares[:-1]), 1)
        body.append([Cell(question)] + [Cell.number(s, "{:.1f}%") for s in shares])
    if merged:
        header = [[Cell("Statement", rowspan=2), Cell("Responses (%)", colspan=3)], _header(answers)]
    else:
        header = [_header(["Statement"] + [f"{a} (%)" if rng.random() < 0.3 else a for a in answers])]
    align = ["left"] + [_number_align(rng)] * len(answers)
    return TableModel(header, body, align, f"Customer survey, n = {rng.randint(150, 2400):,}")


def gen_schedule(rng: random.Random, merged: bool) -> TableModel:
    """A weekly class timetable; merged versions have double periods (rowspan) and a lunch row."""
    days = ["Mon", "Tue", "Wed", "Thu", "Fri"][: rng.choice([3, 4, 5])]
    start = rng.choice([8, 9])
    slots = range(rng.randint(3, 5))
    grid = [[rng.choice(COURSES) for _ in days] for _ in slots]
    body, pending = [], set()
    for r in slots:
        row = [Cell("", bold=True)]
        for d in range(len(days)):
            if (r, d) in pending:
                continue
            double = merged and r + 1 < len(slots) and rng.random() < 0.2
            row.append(Cell(grid[r][d], rowspan=2 if double else 1))
            pending |= {(r + 1, d)} if double else set()
        body.append(row)
    if merged and len(slots) > 2 and not any((2, d) in pending for d in range(len(days))):
        body.insert(2, [Cell("", bold=True), Cell("Lunch break", colspan=len(days), italic=True)])
    for r, row in enumerate(body):
        row[0].text = f"{start + r:02d}:00"
    header = [_header(["Time"] + days)]
    align = ["left"] + ["center"] * len(days)
    return TableModel(header, body, align, f"Timetable, class {rng.randint(5, 12)}{rng.choice('ABC')}")


def gen_products(rng: random.Random, merged: bool) -> TableModel:
    """Product specification sheet: price, weight, battery, screen, storage with units."""
    specs = [("Price", "${:,.2f}", 99, 1999), ("Weight (kg)", "{:.2f}", 0.8, 2.6),
             ("Battery", "{:.0f} h", 6, 22), ("Screen", '{:.1f}"', 11, 17),
             ("Storage", "{:,.0f} GB", 128, 2048), ("Rating", "{:.1f}/5", 3.1, 4.9)]
    chosen = sorted(rng.sample(range(len(specs)), rng.randint(3, 5)))
    names = rng.sample(PRODUCTS, rng.randint(3, 6))
    body = []
    for name in names:
        cells = [Cell(f"{name} {rng.choice('SXMZ')}{rng.randint(1, 9)}")]
        for k in chosen:
            _, fmt, low, high = specs[k]
            value = rng.uniform(low, high)
            value = round(value / 128) * 128 if "GB" in fmt else value - value % 1 + 0.99 if "$" in fmt else value
            cells.append(Cell.number(value, fmt))
        body.append(cells)
    if rng.random() < 0.3:
        body[rng.randrange(len(body))][0].bold = True
    if merged:
        header = [[Cell("Model", rowspan=2), Cell("Specifications", colspan=len(chosen))],
                  _header(specs[k][0] for k in chosen)]
    else:
        header = [_header(["Model"] + [specs[k][0] for k in chosen])]
    align = ["left"] + [_number_align(rng)] * len(chosen)
    return TableModel(header, body, align, f"{rng.choice(['Laptop', 'Tablet', 'Notebook'])} comparison")


def gen_league(rng: random.Random, merged: bool) -> TableModel:
    """A sports league standings table, sorted by points, leader in bold."""
    rows = []
    for team in rng.sample(TEAMS, rng.randint(4, 7)):
        won, drawn, lost = rng.randint(2, 14), rng.randint(0, 8), rng.randint(1, 12)
        gf, ga = rng.randint(10, 45), rng.randint(10, 45)
        rows.append((3 * won + drawn, team, won + drawn + lost, won, drawn, lost, gf, ga))
    rows.sort(reverse=True)
    body = []
    for pos, (pts, team, played, won, drawn, lost, gf, ga) in enumerate(rows, 1):
        body.append([Cell.number(pos, "{:d}"), Cell(team, bold=pos == 1)]
                    + [Cell.number(v, "{:d}") for v in (played, won, drawn, lost, gf, ga)]
                    + [Cell.number(gf - ga, "{:+d}"), Cell.number(pts, "{:d}", bold=True)])
    names = ["Pos", "Team", "P", "W", "D", "L", "GF", "GA", "GD", "Pts"]
    if merged:
        header = [[Cell("Pos", rowspan=2), Cell("Team", rowspan=2), Cell("Matches", colspan=4),
                   Cell("Goals", colspan=3), Cell("Pts", rowspan=2)], _header(names[2:9])]
    else:
        header = [_header(names)]
    align = ["center", "left"] + ["center"] * 8
    return TableModel(header, body, align, f"{rng.choice(['Premier', 'Regional', 'Youth'])} league standings")


def gen_timetable(rng: random.Random, merged: bool) -> TableModel:
    """A train timetable: stations with arrival/departure times, platforms and distance."""
    hour, minute, km = rng.randint(5, 20), rng.randrange(0, 60, 5), 0.0
    body = []
    for i, station in enumerate(rng.sample(STATIONS, rng.randint(4, 7))):
        arrive = f"{hour:02d}:{minute:02d}"
        minute += rng.randint(1, 3)
        depart = f"{hour + minute // 60:02d}:{minute % 60:02d}"
        body.append([Cell(station), Cell(arrive if i else "—"), Cell(depart), Cell.number(rng.randint(1, 12), "{:d}"),
                     Cell.number(km, "{:.1f}")])
        minute += rng.randint(4, 15)
        hour, minute = hour + minute // 60, minute % 60
        km += rng.uniform(2, 25)
    names = ["Station", "Arr.", "Dep.", "Platform", "km"]
    if merged:
        header = [[Cell("Station", rowspan=2), Cell("Time", colspan=2), Cell("Platform", rowspan=2),
                   Cell("km", rowspan=2)], _header(["Arr.", "Dep."])]
    else:
        header = [_header(names)]
    align = ["left", "center", "center", "center", "right"]
    return TableModel(header, body, align, f"Line {rng.randint(1, 19)} to {body[-1][0].text}")


def gen_indicators(rng: random.Random, merged: bool) -> TableModel:
    """Country indicators: population, GDP, growth and unemployment, signed percentages."""
    body = []
    for country in rng.sample(COUNTRIES, rng.randint(3, 7)):
        body.append([Cell(country), Cell.number(rng.uniform(3, 140), "{:.1f}"),
                     Cell.number(rng.uniform(40, 2200), "{:,.0f}"), Cell.number(rng.uniform(-2.5, 7.5), "{:+.1f}%"),
                     Cell.number(rng.uniform(2, 14), "{:.1f}%")])
    names = ["Country", "Population (m)", "GDP (USD bn)", "Growth", "Unemployment"]
    if merged:
        header = [[Cell("Country", rowspan=2), Cell("Population (m)", rowspan=2), Cell("Economy", colspan=3)],
                  _header(names[2:])]
    else:
        header = [_header(names)]
    align = ["left"] + [_number_align(rng)] * 4
    return TableModel(header, body, align, f"Key indicators, {rng.randint(2015, 2024)}")


GENERATORS = {
    "financials": gen_financials, "statistics": gen_statistics, "survey": gen_survey,
    "schedule": gen_schedule, "products": gen_products, "league": gen_league,
    "timetable": gen_timetable, "indicators": gen_indicators,
}


def generate(rng: random.Random, seed: int) -> Task:
    """A random realistic table, printed as Markdown (no merges) or HTML (merges, caption)."""
    name = rng.choice(sorted(GENERATORS))
    merged = rng.random() < 0.4
    model = GENERATORS[name](rng, merged)
    markdown = not model.has_merges and rng.random() < 0.5
    if markdown:
        model.caption = None
    elif rng.random() < 0.3:
        model.caption = None
    return Task("table", print_table(model, markdown), "table/markdown" if markdown else "table/html", seed, model)
