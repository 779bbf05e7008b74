"""Error injection for SVG: edits of the element tree, each with an exact plain-words label.

Each edit type picks an element of the reference tree and returns a `Plan`: the
element keys it claims (whole subtrees, so edits in one pair never touch the same
element or its ancestors), an `apply` that finds its elements by key in any copy
of the reference (so edits compose), and the keys painted PROBE_COLOR for the
pixel check. Works on generated icons (their parts are named by the generator)
and on real icons (parts are named from shape, colour and position).
"""
from __future__ import annotations

import copy
import math
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable

from visual_erm.perturb.base import Edit, NotApplicable, Perturbation, Plan
from visual_erm.tasks import svg as S
from visual_erm.tasks import svg_geometry as G
from visual_erm.tasks.base import Task

MAX_EDITS = 4
KEY = S.KEY_ATTR
NOUNS = {"rect": "rectangle", "circle": "circle", "ellipse": "ellipse", "line": "line", "polyline": "line",
         "polygon": "polygon", "path": "shape", "text": "text", "g": "group of shapes"}
NEW_WORDS = ["SOLD", "OLD", "LOW", "END", "PAID", "LATE", "BEST", "NEW", "HOT", "DUE", "TXT", "ZIP", "APR", "OCT"]


def keyed(icon: S.SvgIcon) -> ET.Element:
    """A copy of the icon tree whose elements carry identity keys (document order)."""
    root = copy.deepcopy(icon.root)
    for k, node in enumerate(root.iter()):
        node.set(KEY, str(k))
    return root


def find(root: ET.Element, key: str) -> ET.Element:
    for node in root.iter():
        if node.get(KEY) == key:
            return node
    raise KeyError(key)


def _subtree(el: ET.Element) -> frozenset:
    return frozenset(node.get(KEY) for node in el.iter())


def _prepend_transform(el: ET.Element, step: str) -> None:
    old = el.get("transform")
    el.set("transform", f"{step} {old}" if old else step)


class Context:
    """The keyed reference tree with what every edit type needs: parents, view box, candidates, names."""

    def __init__(self, icon: S.SvgIcon):
        self.root = keyed(icon)
        self.labels = icon.labels
        self.parent_of = G.parents(self.root)
        self.view = G.view_box(self.root)
        self.size = max(self.view[2] - self.view[0], self.view[3] - self.view[1])
        self.candidates = [el for el in self.root.iter() if el is not self.root and self._visible(el)]
        self._names = {}

    def _visible(self, el: ET.Element) -> bool:
        node = el
        while node is not None:
            if G.local(node.tag) in G.NON_RENDERED or node.get("display") == "none":
                return False
            node = self.parent_of.get(node)
        tag = G.local(el.tag)
        if self.box(el) is None:
            return False
        return any(self.drawn(n) for n in el.iter()) if tag == "g" else tag in S.DRAWN and self.drawn(el)

    def drawn(self, el: ET.Element) -> bool:
        return G.local(el.tag) in S.DRAWN and any(self.paint(el, p) != "none" for p in ("fill", "stroke"))

    def paint(self, el: ET.Element, prop: str) -> str:
        return S.effective_paint(el, prop, self.parent_of)

    def box(self, el: ET.Element) -> G.Box | None:
        return G.root_box(self.root, el, self.parent_of)

    def where(self, box: G.Box) -> str:
        words = G.position_words(box, self.view)
        return "in the centre" if words == "centre" else f"at {words}" if " " in words else f"at the {words}"

    def _auto_name(self, el: ET.Element) -> str:
        tag = G.local(el.tag)
        if tag == "text":
            return f"the text '{''.join(el.itertext()).strip()}'"
        noun = NOUNS.get(tag, tag)
        if tag == "polygon" and len(G.numbers(el.get("points"))) == 6:
            noun = "triangle"
        if tag == "rect" and G.numbers(el.get("rx")) and G.numbers(el.get("rx"))[0] > 0:
            noun = "rounded rectangle"
        fill = self.paint(el, "fill") if tag != "g" else "none"
        colour = (G.colour_name(fill) if fill != "none" else
                  "outlined" if tag != "g" and tag not in ("line", "polyline") else "")
        if tag in ("line", "polyline"):
            colour = G.colour_name(self.paint(el, "stroke"))
        box = self.box(el)
        share = (box[2] - box[0]) * (box[3] - box[1]) / self.size**2
        size = "small" if share < 0.05 else "large" if share > 0.45 else ""
        size = "" if tag in ("text", "line", "polyline") else size
        base = " ".join(w for w in ("the", size, colour, noun) if w)
        return f"{base} {self.where(box)}"

    def name(self, el: ET.Element) -> str:
        """Plain words for an element: the generator's label, else shape, colour and place."""
        if el not in self._names:
            label = self.labels.get(S.index_path(self.root, el))
            if label:
                self._names[el] = label
            else:
                auto = {c: self._auto_name(c) for c in self.candidates if G.local(c.tag) == G.local(el.tag)}
                same = [c for c in self.candidates if c in auto and auto[c] == auto[el]]
                self._names[el] = auto[el] if len(same) < 2 else (
                    f"{auto[el]} ({S.ORDINALS[same.index(el)] if same.index(el) < 8 else 'one'} of {len(same)} "
                    "in drawing order)")
        return self._names[el]

    def pick(self, rng: random.Random, test=lambda el: True) -> ET.Element:
        options = [el for el in self.candidates if test(el)]
        if not options:
            raise NotApplicable("no element fits this edit")
        return rng.choice(options)


def _is(name: str) -> str:
    """'are' for plural labels ('the bars', "the sun's rays"), else 'is'."""
    last = name.split()[-1]
    plural = last.endswith("s") and not last.endswith(("ss", "'s")) and last.isalpha() and " and " not in name
    return "are" if plural else "is"


def _subject(ctx: Context, el: ET.Element) -> str:
    """"the bars are" / "the roof is": the element's name with its verb."""
    return f"{ctx.name(el)} {_is(ctx.name(el))}"


def _simple(name: str, category: str, ctx: Context, el: ET.Element, description: str, change) -> Plan:
    """A plan that edits one element found by its key."""
    key = el.get(KEY)
    return Plan(name, category, ctx.name(el), description, _subtree(el), lambda root: change(find(root, key)), (key,))


# ---------------------------------------------------------------- edit types


def move_element(ctx: Context, rng: random.Random) -> Plan:
    el = ctx.pick(rng)
    directions = {"to the right": (1, 0), "to the left": (-1, 0), "down": (0, 1), "up": (0, -1),
                  "up and to the right": (1, -1), "up and to the left": (-1, -1),
                  "down and to the right": (1, 1), "down and to the left": (-1, 1)}
    words = rng.choice(sorted(directions))
    share = rng.uniform(0.1, 0.18)
    ux, uy = directions[words]
    step = share * ctx.size / math.hypot(ux, uy)
    dx, dy = G.undo_linear(G.ctm(ctx.root, ctx.parent_of.get(el), ctx.parent_of), ux * step, uy * step)
    return _simple("move_element", "structure_error", ctx, el,
                   f"{_subject(ctx, el)} moved {words} by about {round(100 * share)}% of the icon's width",
                   lambda node: _prepend_transform(node, f"translate({G.fmt(dx)} {G.fmt(dy)})"))


def resize_element(ctx: Context, rng: random.Random) -> Plan:
    el = ctx.pick(rng, lambda e: G.parent_box(e) is not None)
    factor = round(rng.uniform(0.55, 0.75) if rng.random() < 0.5 else rng.uniform(1.3, 1.5), 2)
    tag = G.local(el.tag)
    cx, cy = G.centre(G.parent_box(el))

    def change(node):
        if tag == "circle" and not node.get("transform"):
            node.set("r", G.fmt(G.numbers(node.get("r"))[0] * factor))
        elif tag == "ellipse" and not node.get("transform"):
            for k in ("rx", "ry"):
                node.set(k, G.fmt(G.numbers(node.get(k))[0] * factor))
        else:
            _prepend_transform(node, f"translate({G.fmt(cx)} {G.fmt(cy)}) scale({factor}) "
                                     f"translate({G.fmt(-cx)} {G.fmt(-cy)})")

    size = "larger" if factor > 1 else "smaller"
    return _simple("resize_element", "shape_error", ctx, el,
                   f"{_subject(ctx, el)} {size} than in the reference (about {round(100 * factor)}% of its size)",
                   change)


def _shown_paint(ctx: Context, el: ET.Element) -> str:
    """'fill' if any part of the element shows a fill (lines never do), else 'stroke'."""
    for node in el.iter():
        if ctx.drawn(node) and G.local(node.tag) != "line" and ctx.paint(node, "fill") != "none":
            return "fill"
    return "stroke"


def recolour_element(ctx: Context, rng: random.Random) -> Plan:
    el = ctx.pick(rng, lambda e: G.local(e.tag) != "g" or e.get("fill") or e.get("stroke"))
    prop = _shown_paint(ctx, el)
    old = ctx.paint(el, prop)
    options = [n for n, c in S.PALETTE.items() if G.colour_distance(old, c) > 120]
    if not options:
        raise NotApplicable("no clearly different colour")
    new_name = rng.choice(options)

    def change(node):
        for child in node.iter():
            own = S.own_paint(child, prop)
            if child is not node and own and own != "none":
                S.set_paint(child, prop, "inherit")
        S.set_paint(node, prop, S.PALETTE[new_name])

    old_words = "gradient-filled" if old.startswith("url(") else G.colour_name(old)
    lines_only = all(G.local(n.tag) in ("line", "polyline") for n in el.iter() if ctx.drawn(n))
    name = ctx.name(el)
    if prop == "fill" or lines_only:
        words = f"{name} {_is(name)} {new_name} instead of {old_words}"
    else:
        words = f"{name} {'have' if _is(name) == 'are' else 'has'} a {new_name} outline instead of a {old_words} one"
    return _simple("recolour_element", "style_error", ctx, el, words, change)


def delete_element(ctx: Context, rng: random.Random) -> Plan:
    def others(e):
        inside = _subtree(e)
        return [c for c in ctx.candidates if c.get(KEY) not in inside and e not in c.iter()]

    el = ctx.pick(rng, lambda e: len(others(e)) >= 1)
    key = el.get(KEY)

    def apply(root):
        node = find(root, key)
        G.parents(root)[node].remove(node)

    return Plan("delete_element", "structure_error", ctx.name(el), f"{_subject(ctx, el)} missing", _subtree(el), apply,
                (key,))


def _look(ctx: Context, el: ET.Element) -> str:
    """The colour an element mostly shows: its fill, else its stroke."""
    return ctx.paint(el, "fill") if _shown_paint(ctx, el) == "fill" else ctx.paint(el, "stroke")


def _contains(box: G.Box | None, x: float, y: float) -> bool:
    return box is not None and box[0] <= x <= box[2] and box[1] <= y <= box[3]


def add_element(ctx: Context, rng: random.Random) -> Plan:
    x0, y0, x1, y1 = ctx.view
    size = rng.uniform(0.14, 0.22) * ctx.size
    cx, cy = rng.uniform(x0 + size, x1 - size), rng.uniform(y0 + size, y1 - size)
    under = [_look(ctx, c) for c in ctx.candidates if _contains(ctx.box(c), cx, cy)] + ["#ffffff"]
    colour = rng.choice([n for n, c in sorted(S.PALETTE.items()) if all(G.colour_distance(c, u) > 120 for u in under)])
    kind = rng.choice(["circle", "square", "triangle", "star", "bar"])
    half = size / 2
    attrs = {"circle": ("circle", {"cx": cx, "cy": cy, "r": half}),
             "square": ("rect", {"x": cx - half, "y": cy - half, "width": size, "height": size}),
             "triangle": ("polygon", {"points": f"{G.fmt(cx)},{G.fmt(cy - half)} {G.fmt(cx + half)},{G.fmt(cy + half)} "
                                                f"{G.fmt(cx - half)},{G.fmt(cy + half)}"}),
             "star": ("polygon", {"points": S.star_points(cx, cy, half * 1.2, half * 0.5)}),
             "bar": ("rect", {"x": cx - size, "y": cy - half / 3, "width": 2 * size, "height": size / 3})}
    tag, values = attrs[kind]
    key = f"added-{rng.randrange(10**9)}"
    place = ctx.where((cx - half, cy - half, cx + half, cy + half))
    shape = f"{colour} {'horizontal bar' if kind == 'bar' else kind}"

    def apply(root):
        node = ET.SubElement(root, tag, {k: G.fmt(v) if isinstance(v, float) else v for k, v in values.items()})
        node.set("fill", S.PALETTE[colour])
        node.set(KEY, key)

    return Plan("add_element", "structure_error", f"the extra {shape} {place}",
                f"an extra {shape} {place} that the reference does not have", frozenset({key}), apply, (key,),
                added=True)


def _stroke_width(ctx: Context, el: ET.Element) -> float:
    """The stroke width the element (or its first stroked part) is drawn with."""
    for part in el.iter():
        if ctx.drawn(part) and ctx.paint(part, "stroke") != "none":
            width = _width_from(ctx, part)
            if width is not None:
                return width
    return 1.0


def change_stroke_width(ctx: Context, rng: random.Random) -> Plan:
    def stroked(e):
        return any(ctx.drawn(n) and ctx.paint(n, "stroke") != "none" for n in e.iter())

    el = ctx.pick(rng, stroked)
    thicker = _stroke_width(ctx, el) < 1.5 or rng.random() < 0.5
    factor = round(rng.uniform(2.2, 3.0) if thicker else rng.uniform(0.3, 0.45), 2)
    from_ancestors = _inherited_width(ctx, el)

    def change(node):
        """Scale every stroke width in the subtree, including one it inherits from above."""
        for part in node.iter():
            own = S.own_paint(part, "stroke-width")
            if own and G.numbers(own):
                S.set_paint(part, "stroke-width", G.fmt(G.numbers(own)[0] * factor))
        if not S.own_paint(node, "stroke-width"):
            S.set_paint(node, "stroke-width", G.fmt(from_ancestors * factor))

    words = f"{'thicker' if thicker else 'thinner'} stroke (about {G.fmt(factor)} times the reference width)"
    return _simple("change_stroke_width", "style_error", ctx, el, f"{_subject(ctx, el)} drawn with a {words}", change)


def _width_from(ctx: Context, node: ET.Element | None) -> float | None:
    """The stroke-width set on `node` or its nearest ancestor that sets one; None if none does."""
    while node is not None:
        value = S.own_paint(node, "stroke-width")
        if value and G.numbers(value):
            return G.numbers(value)[0]
        node = ctx.parent_of.get(node)
    return None


def _inherited_width(ctx: Context, el: ET.Element) -> float:
    width = _width_from(ctx, ctx.parent_of.get(el))
    return 1.0 if width is None else width


def change_text(ctx: Context, rng: random.Random) -> Plan:
    el = ctx.pick(rng, lambda e: G.local(e.tag) == "text" and (e.text or "").strip())
    old = el.text.strip()
    if old.lstrip("-").rstrip("%").isdigit():
        digits = int(old.lstrip("-").rstrip("%"))
        top = 32 if digits < 32 else 100
        new = old.replace(str(digits), str(rng.choice([n for n in range(1, top) if n != digits])))
    else:
        new = rng.choice([w for w in NEW_WORDS if w != old and len(w) <= len(old) + 1])

    def change(node):
        node.text = new

    return _simple("change_text", "text_symbol_error", ctx, el, f"the text reads '{new}' instead of '{old}'", change)


def rotate_element(ctx: Context, rng: random.Random) -> Plan:
    def asymmetric(e):
        tag = G.local(e.tag)
        round_path = tag == "path" and set(G.path_letters(e.get("d"))) <= set("MmAaZz")
        return G.parent_box(e) is not None and tag != "circle" and not round_path and not (
            tag == "ellipse" and e.get("rx") == e.get("ry"))

    el = ctx.pick(rng, asymmetric)
    angle = rng.choice([-1, 1]) * rng.randint(20, 60)
    cx, cy = G.centre(G.parent_box(el))
    way = "clockwise" if angle > 0 else "anticlockwise"
    return _simple("rotate_element", "shape_error", ctx, el, f"{_subject(ctx, el)} rotated about {abs(angle)}° {way}",
                   lambda node: _prepend_transform(node, f"rotate({angle} {G.fmt(cx)} {G.fmt(cy)})"))


def change_corner_radius(ctx: Context, rng: random.Random) -> Plan:
    def big_rect(e):
        box = G.local_box(e)
        return G.local(e.tag) == "rect" and box and min(box[2] - box[0], box[3] - box[1]) >= 0.08 * ctx.size

    el = ctx.pick(rng, big_rect)
    box = G.local_box(el)
    short = min(box[2] - box[0], box[3] - box[1])
    old = max(G.numbers(el.get("rx")) + G.numbers(el.get("ry")) + [0.0])
    new = 0.0 if old > 0.12 * short and rng.random() < 0.6 else round(0.35 * short, 2) if old < 0.2 * short else 0.0

    def change(node):
        node.attrib.pop("ry", None)
        if new:
            node.set("rx", G.fmt(new))
        else:
            node.attrib.pop("rx", None)

    words = "square corners instead of rounded ones" if not new else (
        "rounded corners instead of square ones" if old == 0 else "more rounded corners")
    return _simple("change_corner_radius", "shape_error", ctx, el, f"{ctx.name(el)} has {words}", change)


def reorder_elements(ctx: Context, rng: random.Random) -> Plan:
    def overlap(a, b):
        ba, bb = G.parent_box(a), G.parent_box(b)
        return ba and bb and min(ba[2], bb[2]) > max(ba[0], bb[0]) and min(ba[3], bb[3]) > max(ba[1], bb[1])

    def alone(kids, i, j):  # no sibling drawn between them overlaps either, so only their order changes
        return not any(overlap(k, kids[i]) or overlap(k, kids[j]) for k in kids[i + 1:j])

    pairs = []
    for parent in ctx.root.iter():
        kids = [k for k in parent if G.local(k.tag) not in G.NON_RENDERED]
        pairs += [(a, b) for i, a in enumerate(kids) for j, b in enumerate(kids) if i < j
                  and a in ctx.candidates and b in ctx.candidates and _shown_paint(ctx, a) == "fill"
                  and overlap(a, b) and alone(kids, i, j)
                  and G.colour_distance(_look(ctx, a), _look(ctx, b)) > 60]
    if not pairs:
        raise NotApplicable("no overlapping siblings of different colours")
    back, front = rng.choice(pairs)
    keys = back.get(KEY), front.get(KEY)

    def apply(root):
        a, b = find(root, keys[0]), find(root, keys[1])
        parent = G.parents(root)[a]
        parent.remove(a)
        parent.insert(list(parent).index(b) + 1, a)

    return Plan("reorder_elements", "structure_error", f"{ctx.name(back)} and {ctx.name(front)}",
                f"{ctx.name(back)} {_is(ctx.name(back))} drawn in front of {ctx.name(front)} instead of behind it",
                _subtree(back) | _subtree(front), apply, keys)


EDITS: dict[str, Callable[[Context, random.Random], Plan]] = {
    "move_element": move_element, "resize_element": resize_element, "recolour_element": recolour_element,
    "delete_element": delete_element, "add_element": add_element, "change_stroke_width": change_stroke_width,
    "change_text": change_text, "rotate_element": rotate_element, "change_corner_radius": change_corner_radius,
    "reorder_elements": reorder_elements,
}
CATEGORY = {"move_element": "structure_error", "resize_element": "shape_error", "recolour_element": "style_error",
            "delete_element": "structure_error", "add_element": "structure_error",
            "change_stroke_width": "style_error", "change_text": "text_symbol_error", "rotate_element": "shape_error",
            "change_corner_radius": "shape_error", "reorder_elements": "structure_error"}


def perturb(task: Task, rng: random.Random, n_edits: int, names=None) -> Perturbation:
    """`n_edits` (0..4) edits on different elements; NotApplicable if they do not fit.

    Tasks without an SvgIcon spec (any SVG source) are edited on their parsed tree.

    Edit types are tried in random order, each once before any repeats; `names`
    restricts them (tests use it to force one type).
    """
    if not 0 <= n_edits <= MAX_EDITS:
        raise ValueError(f"n_edits must be in 0..{MAX_EDITS}, got {n_edits}")
    icon = task.spec if isinstance(task.spec, S.SvgIcon) else S.SvgIcon(S.parse_icon(task.code, size=None))
    ctx = Context(icon)
    current, claimed, edits = copy.deepcopy(ctx.root), set(), []
    order = list(names or EDITS)
    rng.shuffle(order)
    repeatable = [n for n in order if n != "add_element"]  # one extra shape per pair is plenty
    for name in order + repeatable * 2:
        if len(edits) == n_edits:
            break
        try:
            plan = EDITS[name](ctx, rng)
        except NotApplicable:
            continue
        if plan.claims & claimed:
            continue
        single = copy.deepcopy(ctx.root)
        plan.apply(single)
        plan.apply(current)
        claimed |= plan.claims
        base = single if plan.added else ctx.root
        footprint = (S.to_svg(base), S.to_svg(base, probe=[find(base, k) for k in plan.probe]))
        edits.append(Edit(plan.name, plan.category, plan.location, plan.description, S.to_svg(single), footprint))
    if len(edits) < n_edits:
        raise NotApplicable(f"only {len(edits)} of {n_edits} edits fit this icon")
    return Perturbation(S.to_svg(current) if edits else task.code, tuple(edits))
