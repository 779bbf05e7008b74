"""SVG tasks: icons as element trees, printed to SVG source, made from a seed or read from real icons.

The tree (xml.etree, plain local tag names) is the ground truth, so error
injection (`visual_erm.perturb.svg`) edits elements and reprints. Generated icons
carry plain-words labels for their parts ("the left eye", "the second bar from
the left"); real icons (vendored Bootstrap Icons, or any folder) get words from
geometry. `to_svg(root, probe=...)` paints elements PROBE_COLOR to find their
pixels (footprints).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import pathlib
import random
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET

from visual_erm.tasks import svg_geometry as G
from visual_erm.tasks.base import PROBE_COLOR, Task

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("xlink", XLINK_NS)
KEY_ATTR = "data-erm-key"  # identity mark the perturber adds to its working trees; never printed
DRAWN = ("rect", "circle", "ellipse", "line", "polyline", "polygon", "path", "text")
PAINTED = DRAWN + ("tspan", "use")
DISPLAY_PX = 128  # icons are printed at this size so that their pixels say something
ICON_DIR = pathlib.Path(__file__).parent / "icons" / "bootstrap"
FONT = "DejaVu Sans"
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
PALETTE = {"red": "#e53935", "orange": "#fb8c00", "yellow": "#fdd835", "green": "#43a047", "teal": "#00897b",
           "blue": "#1e88e5", "navy": "#283593", "purple": "#8e24aa", "pink": "#ec407a", "brown": "#6d4c41",
           "grey": "#757575", "dark grey": "#37474f"}


@dataclasses.dataclass
class SvgIcon:
    """An icon's element tree and plain-words names of its parts, keyed by child-index path."""

    root: ET.Element
    labels: dict[tuple[int, ...], str] = dataclasses.field(default_factory=dict)


def index_path(root: ET.Element, element: ET.Element) -> tuple[int, ...]:
    parent_of = G.parents(root)
    path = []
    while element is not root:
        parent = parent_of[element]
        path.append(list(parent).index(element))
        element = parent
    return tuple(reversed(path))


def element_at(root: ET.Element, path: tuple[int, ...]) -> ET.Element:
    for i in path:
        root = root[i]
    return root


def style_dict(el: ET.Element) -> dict[str, str]:
    items = (part.split(":", 1) for part in (el.get("style") or "").split(";") if ":" in part)
    return {k.strip(): v.strip() for k, v in items}


def own_paint(el: ET.Element, prop: str) -> str | None:
    return style_dict(el).get(prop) or el.get(prop)


def effective_paint(el: ET.Element, prop: str, parent_of: dict) -> str:
    """The fill or stroke an element is drawn with (inherited; SVG defaults black fill, no stroke)."""
    node = el
    while node is not None:
        value = own_paint(node, prop)
        if value and value != "inherit":
            return value
        node = parent_of.get(node)
    return "black" if prop == "fill" else "none"


def set_paint(el: ET.Element, prop: str, value: str) -> None:
    """Set a presentation attribute, dropping any style declaration that would override it."""
    style = style_dict(el)
    if prop in style:
        del style[prop]
        if style:
            el.set("style", ";".join(f"{k}:{v}" for k, v in style.items()))
        else:
            del el.attrib["style"]
    el.set(prop, value)


def paint_probe(root: ET.Element, element: ET.Element) -> None:
    """Paint `element` (and, for groups, every descendant) PROBE_COLOR where it is drawn at all."""
    parent_of = G.parents(root)
    for node in element.iter():
        if G.local(node.tag) not in PAINTED:
            continue
        for prop in ("fill", "stroke"):
            if effective_paint(node, prop, parent_of) != "none":
                set_paint(node, prop, PROBE_COLOR)
        for prop in ("opacity", "fill-opacity", "stroke-opacity"):
            if own_paint(node, prop) is not None:
                set_paint(node, prop, "1")


def to_svg(root: ET.Element, probe=None) -> str:
    """SVG source of the tree; `probe` (index paths or elements of `root`) are painted PROBE_COLOR."""
    targets = [] if probe is None else [probe] if isinstance(probe, (ET.Element, tuple)) else list(probe)
    if targets and isinstance(targets[0], int):
        targets = [tuple(targets)]
    paths = [t if isinstance(t, tuple) else index_path(root, t) for t in targets]
    out = copy.deepcopy(root)
    for path in paths:
        paint_probe(out, element_at(out, path))
    for node in out.iter():
        node.attrib.pop(KEY_ATTR, None)
    return ET.tostring(out, encoding="unicode") + "\n"


def parse_icon(text: str, size: int | None = DISPLAY_PX) -> ET.Element:
    """A plain-tag tree of an SVG file: foreign namespaces dropped, displayed at `size` px (keeps viewBox)."""
    root = DET.fromstring(text.encode("utf-8"), forbid_dtd=True)
    for node in list(root.iter()):
        foreign = [k for k in node.attrib if k.startswith("{") and not k.startswith("{" + XLINK_NS)]
        for key in foreign:
            del node.attrib[key]
        for child in list(node):
            if not isinstance(child.tag, str) or (child.tag.startswith("{") and not child.tag.startswith("{" + SVG_NS)):
                node.remove(child)
            else:
                child.tag = G.local(child.tag)
    root.tag = "svg"
    attrs = {"xmlns": SVG_NS, **{k: v for k, v in root.attrib.items() if k != "xmlns"}}
    if size is not None:
        view = G.view_box(root)
        if "viewBox" not in attrs:
            attrs["viewBox"] = " ".join(G.fmt(v) for v in (view[0], view[1], view[2] - view[0], view[3] - view[1]))
        aspect = (view[3] - view[1]) / max(view[2] - view[0], 1e-9)
        attrs["width"], attrs["height"] = str(size), G.fmt(size * aspect)
    root.attrib.clear()
    root.attrib.update(attrs)
    return root


def load_icon_folder(path, size: int | None = DISPLAY_PX, prefix: str | None = None) -> list[Task]:
    """One Task per *.svg under `path` (sorted), e.g. an unpacked `npm pack bootstrap-icons`."""
    folder = pathlib.Path(path)
    prefix = prefix or folder.name
    tasks = []
    for seed, file in enumerate(sorted(folder.rglob("*.svg"))):
        root = parse_icon(file.read_text(encoding="utf-8"), size)
        name = file.relative_to(folder).as_posix()
        tasks.append(Task("svg", to_svg(root), f"svg/icon:{prefix}/{name}", seed, SvgIcon(root)))
    return tasks


def default_icons() -> list[Task]:
    """The vendored Bootstrap Icons (MIT), the default real-icon source."""
    return load_icon_folder(ICON_DIR, prefix="bootstrap")


# ---------------------------------------------------------------- generated icons


class _Builder:
    """Builds an icon tree on a 64-unit canvas and remembers labels by element."""

    def __init__(self, rng: random.Random):
        self.rng, self.labels, self._ids = rng, {}, 0
        self.root = ET.Element("svg", {"xmlns": SVG_NS, "width": str(DISPLAY_PX), "height": str(DISPLAY_PX),
                                       "viewBox": "0 0 64 64"})
        self.defs = None

    def add(self, parent, tag: str, label: str | None = None, text: str | None = None, **attrs) -> ET.Element:
        el = ET.SubElement(self.root if parent is None else parent, tag)
        for key, value in attrs.items():
            el.set(key.rstrip("_").replace("_", "-"), G.fmt(value) if isinstance(value, (int, float)) else str(value))
        if text is not None:
            el.text = text
        if label:
            self.labels[el] = label
        return el

    def gradient(self, kind: str, stops: list[str], **attrs) -> str:
        if self.defs is None:
            self.defs = ET.Element("defs")
            self.root.insert(0, self.defs)
        self._ids += 1
        gid = f"g{self._ids}"
        grad = self.add(self.defs, f"{kind}Gradient", id=gid, **attrs)
        for k, colour in enumerate(stops):
            self.add(grad, "stop", offset=f"{round(100 * k / (len(stops) - 1))}%", stop_color=colour)
        return f"url(#{gid})"

    def colour(self, avoid=()) -> tuple[str, str]:
        name = self.rng.choice([n for n in PALETTE if n not in avoid])
        return name, PALETTE[name]

    def icon(self) -> SvgIcon:
        return SvgIcon(self.root, {index_path(self.root, el): label for el, label in self.labels.items()})


def _lighter(hex_colour: str, amount: float = 0.45) -> str:
    rgb = G.parse_colour(hex_colour)
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def star_points(cx, cy, outer, inner, points=5, turn=-90.0) -> str:
    out = []
    for k in range(2 * points):
        r, a = (outer if k % 2 == 0 else inner), math.radians(turn + 180 * k / points)
        out.append(f"{G.fmt(cx + r * math.cos(a))},{G.fmt(cy + r * math.sin(a))}")
    return " ".join(out)


def gen_badge(b: _Builder) -> None:
    name, colour = b.colour(avoid=("yellow",))
    fill = b.gradient("linear", [_lighter(colour), colour], x1=0, y1=0, x2=0, y2=1)
    shape = b.rng.choice(["circle", "rect", "burst"])
    if shape == "circle":
        b.add(None, "circle", f"the {name} round badge", cx=32, cy=32, r=27, fill=fill, stroke="#263238",
                 stroke_width=2)
    elif shape == "rect":
        b.add(None, "rect", f"the {name} badge", x=5, y=16, width=54, height=32, rx=b.rng.choice([4, 8, 12]), fill=fill,
              stroke="#263238", stroke_width=2)
    else:
        b.add(None, "polygon", f"the {name} starburst", points=star_points(32, 32, 30, 24, 12), fill=fill,
              stroke="#263238",
              stroke_width=1.5)
    if shape != "rect":
        b.add(None, "circle", "the dashed inner ring", cx=32, cy=32, r=20, fill="none", stroke="#ffffff",
              stroke_width=1.5, stroke_dasharray="3 2")
    word = b.rng.choice(["SALE", "NEW", "HOT", "TOP", "FREE", "VIP", "BEST", "-50%", "OPEN"])
    b.add(None, "text", f"the text '{word}'", word, x=32, y=37, font_family=FONT, font_size=13 if len(word) > 3 else 15,
          font_weight="bold", text_anchor="middle", fill="#ffffff")
    if shape == "rect" or b.rng.random() < 0.5:
        star = PALETTE["yellow"] if name != "orange" else "#ffffff"
        inset = 10 if shape == "rect" else 14
        b.add(None, "polygon", "the star on the left", points=star_points(inset, 14, 5, 2.2), fill=star)
        b.add(None, "polygon", "the star on the right", points=star_points(64 - inset, 14, 5, 2.2), fill=star)


def gen_face(b: _Builder) -> None:
    skin = b.rng.choice(["#fdd835", "#ffca28", "#ffb74d", "#aed581"])
    head = b.gradient("radial", [_lighter(skin, 0.5), skin], cx=0.4, cy=0.35, r=0.7)
    b.add(None, "circle", "the face", cx=32, cy=32, r=27, fill=head, stroke="#6d4c41", stroke_width=2)
    eye_y, eye_dx = b.rng.uniform(24, 27), b.rng.uniform(8, 10)
    for side, sign in (("left", -1), ("right", 1)):
        b.add(None, "ellipse", f"the {side} eye", cx=32 + sign * eye_dx, cy=eye_y, rx=3, ry=4.5, fill="#3e2723")
    if b.rng.random() < 0.5:
        for side, sign in (("left", -1), ("right", 1)):
            b.add(None, "line", f"the {side} eyebrow", x1=32 + sign * (eye_dx - 4), y1=eye_y - 8,
                  x2=32 + sign * (eye_dx + 4), y2=eye_y - 9.5, stroke="#3e2723", stroke_width=2, stroke_linecap="round")
    mood = b.rng.choice(["smile", "frown", "open"])
    if mood == "open":
        b.add(None, "path", "the open mouth", d="M20 38 Q32 54 44 38 Z", fill="#c62828", stroke="#3e2723",
              stroke_width=1.5)
    else:
        y0, y1 = (39, 50) if mood == "smile" else (46, 37)
        b.add(None, "path", f"the {'smiling' if mood == 'smile' else 'frowning'} mouth", d=f"M21 {y0} Q32 {y1} 43 {y0}",
              fill="none", stroke="#3e2723", stroke_width=3, stroke_linecap="round")
    if b.rng.random() < 0.5:
        for side, sign in (("left", -1), ("right", 1)):
            b.add(None, "circle", f"the {side} cheek", cx=32 + sign * 15, cy=38, r=4, fill="#ec407a", opacity=0.5)


def gen_building(b: _Builder) -> None:
    _, wall = b.colour(avoid=("yellow", "pink"))
    b.add(None, "line", "the ground line", x1=4, y1=58, x2=60, y2=58, stroke="#616161", stroke_width=2)
    b.add(None, "rect", "the building", x=14, y=22, width=36, height=36, fill=wall, stroke="#263238", stroke_width=1.5)
    b.add(None, "polygon", "the roof", points="10,24 32,6 54,24", fill=b.rng.choice(["#8d6e63", "#b71c1c", "#455a64"]))
    if b.rng.random() < 0.5:
        b.add(None, "rect", "the chimney", x=41, y=9, width=5, height=10, fill="#5d4037")
    rows, cols = b.rng.choice([(2, 2), (1, 2), (2, 3)])
    windows = b.add(None, "g", "the windows", transform=f"translate(18 {27 if rows == 2 else 30})")
    width = 8 if cols == 2 else 6
    for r in range(rows):
        for c in range(cols):
            x = c * (28 - width) / (cols - 1)
            b.add(windows, "rect", f"the window in row {r + 1}, column {c + 1}", x=x, y=r * 11, width=width, height=7,
                  rx=1, fill="#bbdefb", stroke="#ffffff", stroke_width=1)
    b.add(None, "rect", "the door", x=27, y=46, width=10, height=12, rx=1.5, fill="#5d4037")
    b.add(None, "circle", "the door knob", cx=34.5, cy=52.5, r=1, fill="#ffd54f")


def gen_bars(b: _Builder) -> None:
    n = b.rng.randint(3, 5)
    colours = [b.colour()[1]] * n if b.rng.random() < 0.5 else [PALETTE[k] for k in b.rng.sample(list(PALETTE)[:10], n)]
    b.add(None, "polyline", "the axes", points="8,6 8,56 60,56", fill="none", stroke="#37474f", stroke_width=2.5)
    bars = b.add(None, "g", "the bars", transform="translate(12 0)")
    step = 46 / n
    heights = [b.rng.uniform(10, 46) for _ in range(n)]
    for k, h in enumerate(heights):
        b.add(bars, "rect", f"the {ORDINALS[k]} bar from the left", x=k * step + 1, y=56 - h, width=step - 3, height=h,
              fill=colours[k])
    if b.rng.random() < 0.6:
        pts = " ".join(f"{G.fmt(12 + k * step + step / 2 - 0.5)},{G.fmt(56 - h - 4)}" for k, h in enumerate(heights))
        b.add(None, "polyline", "the trend line", points=pts, fill="none", stroke="#d32f2f", stroke_width=2,
              stroke_linejoin="round")


def gen_weather(b: _Builder) -> None:
    kind = b.rng.choice(["sunny", "rain", "storm", "snow"])
    sun = b.add(None, "g", "the sun", transform="translate(22 22)" if kind != "sunny" else "translate(32 32)")
    radius = 9 if kind != "sunny" else 13
    b.add(sun, "circle", "the sun's disc", cx=0, cy=0, r=radius, fill=b.rng.choice(["#fdd835", "#ffb300"]))
    rays = b.add(sun, "g", "the sun's rays", stroke="#fb8c00", stroke_width=2.5, stroke_linecap="round")
    count = b.rng.choice([8, 12]) if kind == "sunny" else 8
    for k in range(count):
        a = 2 * math.pi * k / count
        clock = round(3 + 12 * k / count - 1) % 12 + 1
        b.add(rays, "line", f"the sun's ray at {clock} o'clock", x1=math.cos(a) * (radius + 3),
              y1=math.sin(a) * (radius + 3),
              x2=math.cos(a) * (radius + 8), y2=math.sin(a) * (radius + 8))
    if kind == "sunny":
        return
    cloud = b.add(None, "g", "the cloud", fill=b.rng.choice(["#eceff1", "#cfd8dc", "#b0bec5"]), stroke="#78909c",
                  stroke_width=1)
    for cx, cy, r in ((26, 36, 8), (36, 30, 11), (46, 37, 7)):
        b.add(cloud, "circle", cx=cx, cy=cy, r=r)
    b.add(cloud, "rect", x=18, y=36, width=36, height=9, rx=4.5)
    if kind == "storm":
        b.add(None, "polygon", "the lightning bolt", points="35,44 28,55 33,55 30,63 40,50 35,50 38,44", fill="#ffd600",
              stroke="#f57f17", stroke_width=1)
    else:
        for k, x in enumerate((26, 35, 44)):
            name = f"the {('left', 'middle', 'right')[k]} {'rain drop' if kind == 'rain' else 'snowflake'}"
            if kind == "rain":
                b.add(None, "path", name, d=f"M{x} 49 q-3 5 0 7 q3 -2 0 -7 Z", fill="#1e88e5")
            else:
                b.add(None, "circle", name, cx=x, cy=54 + (k % 2) * 3, r=2.2, fill="#90caf9")


def gen_arrow(b: _Builder) -> None:
    name, colour = b.colour(avoid=("yellow",))
    if b.rng.random() < 0.5:
        b.add(None, "circle", f"the {name} disc", cx=32, cy=32, r=28, fill=colour)
    else:
        b.add(None, "rect", f"the {name} square", x=4, y=4, width=56, height=56, rx=b.rng.choice([0, 8, 14]),
              fill=colour)
    angle = b.rng.choice([0, 45, 90, 135, 180, 225, 270, 315])
    arrow = b.add(None, "g", "the arrow", transform=f"rotate({angle} 32 32)")
    b.add(arrow, "line", "the arrow's shaft", x1=16, y1=32, x2=40, y2=32, stroke="#ffffff", stroke_width=6,
          stroke_linecap="round")
    b.add(arrow, "polygon", "the arrowhead", points="36,20 50,32 36,44", fill="#ffffff")


def gen_document(b: _Builder) -> None:
    b.add(None, "path", "the page", d="M14 5 H40 L52 17 V59 H14 Z", fill="#ffffff", stroke="#546e7a", stroke_width=2,
          stroke_linejoin="round")
    b.add(None, "polygon", "the folded corner", points="40,5 40,17 52,17", fill="#cfd8dc", stroke="#546e7a",
          stroke_width=1)
    lines = b.rng.randint(2, 4)
    for k in range(lines):
        b.add(None, "line", f"the {ORDINALS[k]} text line", x1=19, y1=22 + 6 * k, x2=b.rng.choice([40, 44, 47]),
              y2=22 + 6 * k, stroke="#90a4ae", stroke_width=2.5, stroke_linecap="round")
    kind, colour = b.rng.choice([("PDF", "#e53935"), ("DOC", "#1e88e5"), ("XLS", "#43a047"), ("CSV", "#8e24aa")])
    b.add(None, "rect", f"the '{kind}' label", x=10, y=42, width=32, height=14, rx=3, fill=colour)
    b.add(None, "text", f"the text '{kind}'", kind, x=26, y=53, font_family=FONT, font_size=10.5, font_weight="bold",
          text_anchor="middle", fill="#ffffff")


def gen_calendar(b: _Builder) -> None:
    _, top = b.colour(avoid=("yellow", "grey"))
    b.add(None, "rect", "the calendar page", x=8, y=10, width=48, height=48, rx=b.rng.choice([3, 6]), fill="#ffffff",
          stroke="#37474f", stroke_width=2)
    b.add(None, "rect", "the header band", x=9, y=11, width=46, height=13, fill=top)
    for side, x in (("left", 18), ("right", 42)):
        b.add(None, "rect", f"the {side} ring", x=x, y=5, width=4, height=10, rx=2, fill="#37474f")
    month = b.rng.choice(["JAN", "MAR", "MAY", "JUL", "SEP", "NOV", "DEC"])
    day = str(b.rng.randint(1, 31))
    b.add(None, "text", f"the month '{month}'", month, x=32, y=21.5, font_family=FONT, font_size=8, font_weight="bold",
          text_anchor="middle", fill="#ffffff")
    b.add(None, "text", f"the day number '{day}'", day, x=32, y=49, font_family=FONT, font_size=20, font_weight="bold",
          text_anchor="middle", fill="#263238")


def gen_battery(b: _Builder) -> None:
    level = b.rng.randint(1, 4)
    colour = PALETTE["red"] if level == 1 else PALETTE["orange"] if level == 2 else PALETTE["green"]
    b.add(None, "rect", "the battery casing", x=6, y=18, width=48, height=28, rx=4, fill="none", stroke="#37474f",
          stroke_width=3)
    b.add(None, "rect", "the battery terminal", x=55, y=26, width=4, height=12, rx=1.5, fill="#37474f")
    for k in range(level):
        b.add(None, "rect", f"the {ORDINALS[k]} charge bar from the left", x=10 + k * 11, y=22, width=9, height=20,
              rx=1,
              fill=colour)
    if b.rng.random() < 0.4:
        b.add(None, "polygon", "the charging bolt", points="33,12 25,34 32,34 29,52 40,28 33,28 37,12", fill="#fdd835",
              stroke="#37474f", stroke_width=1.5)


def gen_pie(b: _Builder) -> None:
    shares = [b.rng.uniform(0.15, 0.5) for _ in range(b.rng.randint(3, 4))]
    total, start = sum(shares), -90.0
    names = b.rng.sample(list(PALETTE)[:10], len(shares))
    for k, share in enumerate(shares):
        sweep = 360 * share / total
        a0, a1 = math.radians(start), math.radians(start + sweep)
        x0, y0, x1, y1 = 32 + 26 * math.cos(a0), 32 + 26 * math.sin(a0), 32 + 26 * math.cos(a1), 32 + 26 * math.sin(a1)
        d = f"M32 32 L{G.fmt(x0)} {G.fmt(y0)} A26 26 0 {int(sweep > 180)} 1 {G.fmt(x1)} {G.fmt(y1)} Z"
        b.add(None, "path", f"the {names[k]} slice", d=d, fill=PALETTE[names[k]], stroke="#ffffff", stroke_width=1.5)
        start += sweep
    if b.rng.random() < 0.4:
        b.add(None, "circle", "the hole in the middle", cx=32, cy=32, r=11, fill="#ffffff")


GENERATORS = {
    "badge": gen_badge, "face": gen_face, "building": gen_building, "bars": gen_bars, "weather": gen_weather,
    "arrow": gen_arrow, "document": gen_document, "calendar": gen_calendar, "battery": gen_battery, "pie": gen_pie,
}


REAL_ICON_SHARE = 0.25  # of generated tasks that are vendored real icons instead of compositions


@functools.lru_cache(maxsize=1)
def _default_icons() -> tuple[Task, ...]:
    return tuple(default_icons())


def generate(rng: random.Random, seed: int) -> Task:
    """A random icon-like composition, or (REAL_ICON_SHARE of the time) a vendored real icon."""
    if rng.random() < REAL_ICON_SHARE:
        icon = rng.choice(_default_icons())
        return dataclasses.replace(icon, seed=seed, spec=SvgIcon(copy.deepcopy(icon.spec.root)))
    name = rng.choice(sorted(GENERATORS))
    builder = _Builder(rng)
    GENERATORS[name](builder)
    icon = builder.icon()
    return Task("svg", to_svg(icon.root), f"svg/{name}", seed, icon)
