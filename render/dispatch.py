"""One entry point from (kind, code, size) to pixels, without any sandbox.

The sandboxed worker calls this inside its jail; the benchmark calls it bare
to measure what the sandbox costs.
"""
from __future__ import annotations

import time

import numpy as np
from PIL import Image

from render.chart import render_chart
from render.errors import RenderResult
from render.pycode import classify
from render.request import check_request
from render.svg import svg_to_rgb
from render.table import render_table
from render.trace import trace_chart


def _fit(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(size):
        rgb = np.asarray(Image.fromarray(rgb).resize(tuple(size), Image.Resampling.LANCZOS))
    return rgb


def render_array(kind: str, code: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """HxWx3 uint8 pixels, or RenderInputError. `size` is (width, height)."""
    check_request(kind, code, size)
    if kind == "svg":
        return svg_to_rgb(code, size)
    return _fit(render_chart(code) if kind == "chart" else render_table(code), size)


def render_traced(kind: str, code: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, dict | None]:
    """`render_array` plus the chart trace (render/trace.py); the trace is None for tables and SVGs."""
    if kind != "chart":
        return render_array(kind, code, size), None
    check_request(kind, code, size)
    rgb, trace = trace_chart(code)
    return _fit(rgb, size), trace


def render_in_process(kind: str, code: str, size: tuple[int, int] | None = None) -> RenderResult:
    """Render in this very process: NO isolation; for trusted code and benchmarks."""
    start = time.perf_counter()
    try:
        rgb = render_array(kind, code, size)
    except BaseException as exc:
        error = classify(exc, code if isinstance(code, str) else "").error
        return RenderResult(error=error, seconds=time.perf_counter() - start)
    return RenderResult(image=Image.fromarray(rgb, "RGB"), seconds=time.perf_counter() - start)
