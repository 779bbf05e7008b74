"""A toy vision-to-SVG task for learning tests: one shape on a small canvas.

Small enough that a tiny policy learns it on a CPU in minutes, rich enough to
need the image: the shape's kind, colour, position and size all vary. The
shapes themselves are defined in `visual_erm.tasks.shapes`, where the judge's
reward data for this task is made from the same specs.
"""
from __future__ import annotations

from rl.task_sources import Reference, TaskSource
from visual_erm.tasks.shapes import COLORS, shape_code

__all__ = ["COLORS", "ShapeSource", "shape_code"]


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
