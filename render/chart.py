"""Matplotlib chart code -> RGB pixels, the same pixels on every run.

The code runs as written (plt.show(), plt.savefig('x.png'), fig.savefig(...),
or nothing at all); instead of rewriting it, we intercept the two ways a script
hands over a figure (`Figure.savefig`, `pyplot.show`) and otherwise take the
last open figure. The figure is then drawn once, at a fixed DPI, by us, with Agg
whatever backend the script asks for (`matplotlib.use`, `plt.switch_backend`, and
MPLBACKEND, which matplotlib only reads at import: before the script runs).
"""
from __future__ import annotations

import builtins
import random

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from render.errors import RenderInputError
from render.pycode import run_python
from render.request import MAX_CHART_PIXELS

DPI = 100
MAX_PIXELS = MAX_CHART_PIXELS
STYLE = {
    "font.family": "DejaVu Sans",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "svg.hashsalt": "visual-erm",
    "figure.max_open_warning": 0,
}


def reset_state() -> None:
    """Matplotlib defaults, our fixed fonts and DPI, seeded RNGs."""
    plt.close("all")
    matplotlib.rcdefaults()
    matplotlib.rcParams.update(STYLE)
    random.seed(0)
    np.random.seed(0)


def _figure_to_rgb(fig: Figure) -> np.ndarray:
    width, height = fig.get_size_inches() * DPI
    if not (np.isfinite(width) and np.isfinite(height)) or width * height > MAX_PIXELS:
        raise RenderInputError(
            "too_large", f"figure of {width:.0f}x{height:.0f} px exceeds {MAX_PIXELS} pixels"
        )
    if width < 1 or height < 1:
        raise RenderInputError("bad_input", f"figure of {width:.1f}x{height:.1f} px is empty")
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    if rgba[..., 3].min() == 255:  # opaque (the usual figure): compositing would change nothing
        return np.ascontiguousarray(rgba[..., :3])
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))


def render_chart(code: str, tracer=None) -> np.ndarray:
    """Run `code` and return the figure it made as an HxWx3 uint8 array.

    `tracer` (render.trace.ChartTracer) watches our final draw of the chosen figure.
    """
    reset_state()
    handed_over: list[Figure] = []
    real_savefig = Figure.savefig
    real_show = plt.show

    def savefig(self, *args, **kwargs):  # the script's own file is never written
        handed_over.append(self)

    def show(*args, **kwargs):
        if plt.get_fignums():
            handed_over.append(plt.gcf())

    real_use, real_switch = matplotlib.use, plt.switch_backend

    def keep_agg(*args, **kwargs):  # matplotlib.use / plt.switch_backend: we draw with Agg, always
        real_switch("agg")

    Figure.savefig, plt.show = savefig, show
    matplotlib.use, plt.switch_backend = keep_agg, keep_agg
    try:
        run_python(code, {"__name__": "__main__", "__builtins__": builtins})
        if handed_over:
            fig = handed_over[-1]
        elif plt.get_fignums():
            fig = plt.figure(max(plt.get_fignums()))
        else:
            raise RenderInputError("no_figure", "the code ran but created no matplotlib figure")
        if tracer is None:
            return _figure_to_rgb(fig)
        with tracer.drawing(fig):
            return _figure_to_rgb(fig)
    finally:
        Figure.savefig, plt.show = real_savefig, real_show
        matplotlib.use, plt.switch_backend = real_use, real_switch
        matplotlib.rcParams["backend"] = "agg"  # a script may have set it directly
