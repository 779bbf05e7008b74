"""The toy single-shape SVG task (the main job's task) as a structured spec.

One circle or square of one colour on a small white canvas. The spec is what
error injection edits (`visual_erm.shapes_data`); `shape_code` prints the
exact reference code `rl.shapes.ShapeSource` serves, so the judge is trained on
the same references the policy is asked to redraw.
"""
from __future__ import annotations

import dataclasses
import random

COLORS = ("red", "blue", "green", "orange", "purple", "black")
SIZES = (6, 8, 10)
SHAPE_KINDS = ("circle", "square")


@dataclasses.dataclass(frozen=True)
class Shape:
    """A shape centred at (x, y); `size` is a square's side (a circle's radius is size // 2 + 2)."""

    kind: str  # "circle" | "square"
    color: str
    size: int
    x: int
    y: int

    def element(self, fill: str | None = None) -> str:
        fill = fill or self.color
        if self.kind == "circle":
            return f'<circle cx="{self.x}" cy="{self.y}" r="{self.size // 2 + 2}" fill="{fill}"/>'
        half = self.size // 2
        return (f'<rect x="{self.x - half}" y="{self.y - half}" width="{self.size}" height="{self.size}" '
                f'fill="{fill}"/>')

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"


def shape_spec(seed: int, canvas: int = 32) -> Shape:
    """The reference shape for `seed` (the draw order is fixed: it defines the task set)."""
    rng = random.Random(f"shape:{seed}")
    color = rng.choice(COLORS)
    size = rng.choice(SIZES)
    x = rng.randrange(size, canvas - size + 1, 2)
    y = rng.randrange(size, canvas - size + 1, 2)
    kind = "circle" if rng.random() < 0.5 else "square"
    return Shape(kind, color, size, x, y)


def svg_code(shapes, canvas: int = 32, fills: dict | None = None) -> str:
    """An SVG of `shapes` in order; `fills` maps a shape's index to an override fill (probe painting)."""
    fills = fills or {}
    body = "".join(s.element(fills.get(i)) for i, s in enumerate(shapes))
    return f'<svg width="{canvas}" height="{canvas}">{body}</svg>'


def shape_code(seed: int, canvas: int = 32) -> str:
    """The reference SVG for `seed`: a circle or square of one colour."""
    return svg_code([shape_spec(seed, canvas)], canvas)
