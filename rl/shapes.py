"""A toy vision-to-SVG task for learning tests: one shape on a small canvas.

Small enough that a tiny policy learns it on a CPU in minutes, rich enough to
need the image: the shape's kind, colour, position and size all vary.
"""
from __future__ import annotations

import random

from rl.tasks import Reference, TaskSource

COLORS = ("red", "blue", "green", "orange", "purple", "black")


def shape_code(seed: int, canvas: int = 32) -> str:
    """The reference SVG for `seed`: a circle or square of one colour."""
    rng = random.Random(f"shape:{seed}")
    color = rng.choice(COLORS)
    size = rng.choice((6, 8, 10))
    x = rng.randrange(size, canvas - size + 1, 2)
    y = rng.randrange(size, canvas - size + 1, 2)
    if rng.random() < 0.5:
        body = f'<circle cx="{x}" cy="{y}" r="{size // 2 + 2}" fill="{color}"/>'
    else:
        body = f'<rect x="{x - size // 2}" y="{y - size // 2}" width="{size}" height="{size}" fill="{color}"/>'
    return f'<svg width="{canvas}" height="{canvas}">{body}</svg>'


class ShapeSource(TaskSource):
    """Tasks `shape_code(seed)` for seeds in [start, stop), rendered at their own size."""

    name = "shapes"

    def __init__(self, start: int = 0, stop: int = 1000, canvas: int = 32, **options):
        super().__init__(**options)
        self.start, self.stop, self.canvas = int(start), int(stop), int(canvas)

    def __len__(self) -> int:
        return self.stop - self.start

    def _reference(self, index: int) -> Reference:
        seed = self.start + index
        return Reference(f"shapes/{seed}", "svg", shape_code(seed, self.canvas), where=f"shape seed {seed}")
