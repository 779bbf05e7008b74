"""Just enough SVG geometry and colour to name elements in words and edit them about their centre.

Labels such as "the red circle at top left" and edits such as "rotate about its own
centre" need each element's bounding box (through its transforms) and a colour
name. Boxes are approximate where exactness costs much (path arcs and curves use
their end and control points, text uses an average glyph width); they choose
words and pivots, never pixels: the pixel check (`visual_erm.perturb.verify`) does that.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Matrix = tuple[float, float, float, float, float, float]  # a, b, c, d, e, f (SVG order)
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
CONTAINERS = ("svg", "g", "a", "switch")
NON_RENDERED = ("defs", "clipPath", "mask", "linearGradient", "radialGradient", "pattern", "symbol",
                "marker", "filter", "style", "title", "desc", "metadata")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PATH_TOKEN = re.compile(r"[MmLlHhVvCcSsQqTtAaZz]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRANSFORM = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")
_PATH_ARITY = {"m": 2, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "a": 7, "z": 0}
NAMED_COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "light grey": (200, 200, 200),
    "dark grey": (70, 70, 70), "red": (220, 40, 40), "dark red": (140, 20, 20), "orange": (245, 140, 20),
    "yellow": (250, 215, 30), "gold": (212, 175, 55), "green": (40, 170, 70), "dark green": (20, 100, 40),
    "light green": (150, 220, 120), "teal": (0, 128, 128), "cyan": (40, 200, 220), "blue": (40, 90, 220),
    "light blue": (140, 190, 240), "navy": (20, 30, 100), "purple": (130, 60, 180), "pink": (245, 140, 180),
    "magenta": (220, 40, 200), "brown": (130, 80, 40), "beige": (235, 220, 180),
}
_CSS_NAMES = {"black": "#000000", "white": "#ffffff", "red": "#ff0000", "green": "#008000", "blue": "#0000ff",
              "yellow": "#ffff00", "orange": "#ffa500", "gray": "#808080", "grey": "#808080", "purple": "#800080",
              "currentcolor": "#000000", "navy": "#000080", "teal": "#008080", "silver": "#c0c0c0"}


def local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def numbers(text: str | None) -> list[float]:
    return [float(n) for n in _NUMBER.findall(text or "")]


def fmt(x: float) -> str:
    """Short decimal for attributes: 12, 12.5, 12.34."""
    return f"{round(x, 2):g}"


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """m then applied after n: the matrix of `transform="m n"`."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2,
            a * e2 + c * f2 + e, b * e2 + d * f2 + f)


def parse_transform(text: str | None) -> Matrix:
    m = IDENTITY
    for name, args in _TRANSFORM.findall(text or ""):
        v = numbers(args)
        if name == "matrix" and len(v) == 6:
            step = tuple(v)
        elif name == "translate" and v:
            step = (1, 0, 0, 1, v[0], v[1] if len(v) > 1 else 0)
        elif name == "scale" and v:
            step = (v[0], 0, 0, v[1] if len(v) > 1 else v[0], 0, 0)
        elif name == "rotate" and v:
            cos, sin = math.cos(math.radians(v[0])), math.sin(math.radians(v[0]))
            cx, cy = (v[1], v[2]) if len(v) == 3 else (0, 0)
            step = (cos, sin, -sin, cos, cx - cos * cx + sin * cy, cy - sin * cx - cos * cy)
        elif name in ("skewX", "skewY") and v:
            t = math.tan(math.radians(v[0]))
            step = (1, 0, t, 1, 0, 0) if name == "skewX" else (1, t, 0, 1, 0, 0)
        else:
            continue
        m = multiply(m, step)
    return m


def apply(m: Matrix, box: Box) -> Box:
    a, b, c, d, e, f = m
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        xs.append(a * x + c * y + e)
        ys.append(b * x + d * y + f)
    return min(xs), min(ys), max(xs), max(ys)


def union(boxes) -> Box | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _split_flags(tokens: list[str], i: int) -> None:
    """Arc flags may be written without separators ('a1 1 0 011 1'): split them in place."""
    for k in (i + 3, i + 4):
        t = tokens[k] if k < len(tokens) else ""
        if len(t) > 1 and t[0] in "01" and t[1] != ".":
            tokens[k:k + 1] = [t[0], t[1:]]


def _bezier(points: list[tuple[float, float]], samples: int = 8) -> list[tuple[float, float]]:
    """Points along a quadratic or cubic Bezier curve given all its control points."""
    out = []
    for k in range(1, samples + 1):
        t, level = k / samples, points
        while len(level) > 1:
            level = [(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t) for a, b in zip(level, level[1:])]
        out.append(level[0])
    return out


def path_points(d: str) -> list[tuple[float, float]]:
    """Points along path data in absolute coordinates (curves and arcs sampled): a box around the outline."""
    points, x, y, start, command, control = [], 0.0, 0.0, (0.0, 0.0), None, None
    tokens = _PATH_TOKEN.findall(d or "")
    i = 0
    while i < len(tokens):
        if tokens[i].isalpha():
            command, i = tokens[i], i + 1
            if command in "zZ":
                x, y = start
                control = None
                continue
        if command is None:
            break
        low, rel = command.lower(), command.islower()
        if low == "a":
            _split_flags(tokens, i)
        arity = _PATH_ARITY[low]
        chunk = tokens[i:i + arity]
        if len(chunk) < arity or any(t.isalpha() for t in chunk):
            break
        args = [float(t) for t in chunk]
        i += arity
        if low in "hv":
            x, y = (x + args[0] if rel else args[0], y) if low == "h" else (x, y + args[0] if rel else args[0])
            control = None
        elif low == "a":
            end = (x + args[5], y + args[6]) if rel else (args[5], args[6])
            points.extend(arc_points((x, y), end, *args[:5]))
            (x, y), control = end, None
        else:
            pairs = [(args[k], args[k + 1]) for k in range(0, arity, 2)]
            given = [(x + px, y + py) if rel else (px, py) for px, py in pairs]
            if low in "st":
                reflected = (2 * x - control[0], 2 * y - control[1]) if control else (x, y)
                given = [reflected] + given
            if low in "csqt":
                points.extend(_bezier([(x, y)] + given))
                control = given[-2]
            else:
                control = None
            x, y = given[-1]
        points.append((x, y))
        if low == "m":
            start = (x, y)
            command = "l" if rel else "L"
    return points


def arc_points(start, end, rx, ry, rotation, large, sweep, samples: int = 8) -> list[tuple[float, float]]:
    """Points along an SVG elliptical arc (endpoint to centre parameterisation, SVG 1.1 F.6.5)."""
    (x1, y1), (x2, y2) = start, end
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0 or start == end:
        return [end]
    phi = math.radians(rotation)
    cos, sin = math.cos(phi), math.sin(phi)
    dx, dy = (x1 - x2) / 2, (y1 - y2) / 2
    xp, yp = cos * dx + sin * dy, -sin * dx + cos * dy
    scale = xp**2 / rx**2 + yp**2 / ry**2
    if scale > 1:
        rx, ry = rx * math.sqrt(scale), ry * math.sqrt(scale)
    num = max(0.0, rx**2 * ry**2 - rx**2 * yp**2 - ry**2 * xp**2)
    coef = math.sqrt(num / (rx**2 * yp**2 + ry**2 * xp**2)) * (-1 if bool(large) == bool(sweep) else 1)
    cxp, cyp = coef * rx * yp / ry, -coef * ry * xp / rx
    cx, cy = cos * cxp - sin * cyp + (x1 + x2) / 2, sin * cxp + cos * cyp + (y1 + y2) / 2
    a1 = math.atan2((yp - cyp) / ry, (xp - cxp) / rx)
    a2 = math.atan2((-yp - cyp) / ry, (-xp - cxp) / rx)
    delta = a2 - a1
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    out = []
    for k in range(1, samples + 1):
        a = a1 + delta * k / samples
        ex, ey = rx * math.cos(a), ry * math.sin(a)
        out.append((cos * ex - sin * ey + cx, sin * ex + cos * ey + cy))
    return out


def path_letters(d: str | None) -> list[str]:
    return [t for t in _PATH_TOKEN.findall(d or "") if t.isalpha()]


def _attr(el: ET.Element, name: str, default: float = 0.0) -> float:
    v = numbers(el.get(name))
    return v[0] if v else default


def local_box(el: ET.Element) -> Box | None:
    """The element's box in its own coordinates (before its own transform)."""
    tag = local(el.tag)
    if tag == "rect":
        x, y = _attr(el, "x"), _attr(el, "y")
        return x, y, x + _attr(el, "width"), y + _attr(el, "height")
    if tag == "circle":
        cx, cy, r = _attr(el, "cx"), _attr(el, "cy"), _attr(el, "r")
        return cx - r, cy - r, cx + r, cy + r
    if tag == "ellipse":
        cx, cy, rx, ry = _attr(el, "cx"), _attr(el, "cy"), _attr(el, "rx"), _attr(el, "ry")
        return cx - rx, cy - ry, cx + rx, cy + ry
    if tag == "line":
        xs, ys = (_attr(el, "x1"), _attr(el, "x2")), (_attr(el, "y1"), _attr(el, "y2"))
        return min(xs), min(ys), max(xs), max(ys)
    if tag in ("polyline", "polygon", "path"):
        if tag == "path":
            pts = path_points(el.get("d", ""))
        else:
            v = numbers(el.get("points"))
            pts = list(zip(v[0::2], v[1::2]))
        if not pts:
            return None
        return min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)
    if tag == "text":
        size = _attr(el, "font-size", 16.0)
        width = 0.6 * size * len("".join(el.itertext()))
        x, y = _attr(el, "x"), _attr(el, "y")
        anchor = el.get("text-anchor", "start")
        x0 = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
        return x0, y - 0.75 * size, x0 + width, y + 0.25 * size
    if tag in CONTAINERS:
        return union(parent_box(child) for child in el if local(child.tag) not in NON_RENDERED)
    return None


def parent_box(el: ET.Element) -> Box | None:
    """The element's box in its parent's coordinates (through its own transform)."""
    box = local_box(el)
    return None if box is None else apply(parse_transform(el.get("transform")), box)


def parents(root: ET.Element) -> dict[ET.Element, ET.Element]:
    return {child: parent for parent in root.iter() for child in parent}


def ctm(root: ET.Element, el: ET.Element | None, parent_of: dict) -> Matrix:
    """The product of the transforms of `el` and its ancestors below the root: el's user space -> root's."""
    m = IDENTITY
    while el is not None and el is not root:
        m = multiply(parse_transform(el.get("transform")), m)
        el = parent_of.get(el)
    return m


def undo_linear(m: Matrix, vx: float, vy: float) -> tuple[float, float]:
    """The vector that `m`'s linear part maps to (vx, vy) (a shift in root units -> local units)."""
    a, b, c, d = m[:4]
    det = a * d - b * c
    if abs(det) < 1e-12:
        return vx, vy
    return (d * vx - c * vy) / det, (-b * vx + a * vy) / det


def root_box(root: ET.Element, el: ET.Element, parent_of: dict | None = None) -> Box | None:
    """The element's box in root user units (all ancestor transforms applied)."""
    parent_of = parent_of if parent_of is not None else parents(root)
    box = parent_box(el)
    node = parent_of.get(el)
    while box is not None and node is not None and node is not root:
        box = apply(parse_transform(node.get("transform")), box)
        node = parent_of.get(node)
    return box


def view_box(root: ET.Element) -> Box:
    v = numbers(root.get("viewBox"))
    if len(v) == 4 and v[2] > 0 and v[3] > 0:
        return v[0], v[1], v[0] + v[2], v[1] + v[3]
    return 0.0, 0.0, _attr(root, "width", 300.0), _attr(root, "height", 150.0)


def centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def position_words(box: Box, view: Box) -> str:
    """'top left', 'bottom', 'centre'... from where the box centre falls in a 3x3 grid."""
    cx, cy = centre(box)
    fx = (cx - view[0]) / max(view[2] - view[0], 1e-9)
    fy = (cy - view[1]) / max(view[3] - view[1], 1e-9)
    row = "top" if fy < 1 / 3 else "bottom" if fy > 2 / 3 else ""
    col = "left" if fx < 1 / 3 else "right" if fx > 2 / 3 else ""
    return " ".join(w for w in (row, col) if w) or "centre"


def parse_colour(value: str | None) -> tuple[int, int, int] | None:
    value = (value or "").strip().lower()
    value = _CSS_NAMES.get(value, value)
    if value.startswith("#") and len(value) in (4, 7):
        digits = value[1:] if len(value) == 7 else "".join(ch * 2 for ch in value[1:])
        try:
            return tuple(int(digits[k:k + 2], 16) for k in (0, 2, 4))
        except ValueError:
            return None
    if value.startswith("rgb("):
        v = numbers(value)
        return tuple(int(x) for x in v[:3]) if len(v) >= 3 else None
    return None


def colour_name(value: str | None) -> str:
    """The nearest plain colour word ('red', 'light blue'); gradients are 'gradient-filled'."""
    if value and value.strip().startswith("url("):
        return "gradient-filled"
    rgb = parse_colour(value)
    if rgb is None:
        return "coloured"
    return min(NAMED_COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(NAMED_COLOURS[n], rgb)))


def colour_distance(a: str | None, b: str | None) -> float:
    ra, rb = parse_colour(a), parse_colour(b)
    if ra is None or rb is None:
        return 0.0 if a == b else 255.0
    return math.dist(ra, rb)
