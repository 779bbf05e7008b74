"""Trace what a chart script drew: texts, chart types, colours, subplot layout (ChartMimic-style).

Runs inside the task process, around `render.chart.render_chart`:

* **types**: the plotting methods of `Axes` (and `Axes3D`) in `CHART_TYPES` are wrapped while
  the script runs; each *outermost* call is counted (``hist`` calling ``bar`` inside counts
  once, as ``hist``), as ChartMimic's chart-type logger does. ``plt.bar`` reaches ``Axes.bar``;
  what ``colorbar`` draws internally is not counted.
* **colors**: after our final draw, the artists each counted call returned are read back
  (lines: colour; patches: face colour, or edge colour when unfilled; collections: their face
  colours, else edge colours; colour-mapped images/meshes/contours: ``cmap:<name>``), as
  lowercase ``#rrggbb``, fully transparent ones skipped; unique ``(chart_type, colour)`` pairs.
* **texts**: every string the Agg renderer draws in our final draw (``draw_text``/``draw_tex``),
  with the role of its Text artist: ``title`` (axes titles, suptitle), ``label`` (axis labels,
  supx/ylabel), ``tick`` (tick labels, offset text), ``legend`` (entries and title), ``text``
  (anything else: annotations, ``bar_label``, pie labels, ``ax.text``). Blank strings skipped.
* **layout**: ``(nrows, ncols, row_start, row_end, col_start, col_end)`` (ends inclusive) of
  every axes of the figure that sits in a grid spec; ``add_axes`` axes have none.

Only calls on axes of the figure that is finally drawn count. Caps: render/trace_schema.py.
The script runs in this same process, so it could forge its own trace: a trace is a metric
input, bounded in shape and size by the zygote, never a security boundary.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import Collection
from matplotlib.container import Container
from matplotlib.figure import Figure, FigureBase
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from render.chart import render_chart
from render.trace_schema import MAX_COLORS, MAX_LAYOUT, MAX_TEXT_CHARS, MAX_TEXTS, MAX_TYPES, shrink_trace

try:
    from mpl_toolkits.mplot3d import Axes3D
except ImportError:  # pragma: no cover - part of every matplotlib install
    Axes3D = None

CHART_TYPES = (
    "plot", "loglog", "semilogx", "semilogy", "step", "scatter", "bar", "barh", "broken_barh", "stem",
    "stairs", "stackplot", "axhline", "axvline", "axhspan", "axvspan", "errorbar", "hist", "hist2d",
    "hexbin", "pie", "boxplot", "violinplot", "fill", "fill_between", "fill_betweenx", "imshow",
    "matshow", "pcolor", "pcolormesh", "contour", "contourf", "tricontour", "tricontourf", "tripcolor",
    "quiver", "streamplot", "barbs", "arrow", "eventplot", "specgram", "spy", "ecdf",
)
CHART_TYPES_3D = ("plot_surface", "plot_wireframe", "plot_trisurf", "bar3d", "voxels")
MAX_CALLS = 4096  # recorded calls; a script calling more only loses colours, never memory
_MAX_ARTISTS = 4096  # artists visited per call result


class ChartTracer:
    """Collects one chart script's trace; use `trace_chart` rather than this directly."""

    def __init__(self):
        self.depth = 0
        self.calls: list[tuple] = []  # (axes, chart type, returned object)
        self.drawn: list[tuple] = []  # (Text artist or None, string)
        self.recording = False
        self.trace: dict | None = None

    # ------------------------------------------------------------ while the script runs

    def _wrap(self, name: str | None, original):
        """Count an outermost call as chart type `name`; None: count nothing inside it."""
        tracer = self

        @functools.wraps(original)
        def traced(owner, /, *args, **kwargs):  # positional-only: `ax=` may be a keyword of the method
            if tracer.depth:
                return original(owner, *args, **kwargs)
            tracer.depth += 1
            try:
                result = original(owner, *args, **kwargs)
            finally:
                tracer.depth -= 1
            if name is not None and len(tracer.calls) < MAX_CALLS:
                tracer.calls.append((owner, name, result))
            return result

        return traced

    @contextlib.contextmanager
    def installed(self):
        """Wrap the plotting methods (and the renderer's text calls) for the duration."""
        patched = []  # (class, method, original, wrapper)
        targets = [(Axes, CHART_TYPES)] + ([(Axes3D, CHART_TYPES_3D)] if Axes3D is not None else [])
        for cls, names in targets:
            for name in names:
                if name in cls.__dict__:
                    patched.append((cls, name, cls.__dict__[name], self._wrap(name, cls.__dict__[name])))
        # a colorbar draws itself with pcolormesh: not a chart type of the script's
        patched.append((FigureBase, "colorbar", FigureBase.colorbar, self._wrap(None, FigureBase.colorbar)))
        for method in ("draw_text", "draw_tex"):
            original = RendererAgg.__dict__[method]
            patched.append((RendererAgg, method, original, self._text_hook(original)))
        try:
            for cls, name, _, wrapper in patched:
                setattr(cls, name, wrapper)
            yield self
        finally:
            for cls, name, original, _ in patched:
                setattr(cls, name, original)

    def _text_hook(self, original):
        tracer = self

        @functools.wraps(original)
        def draw(renderer, /, *args, **kwargs):  # (gc, x, y, s, prop, angle, ..., mtext=None)
            s = args[3] if len(args) > 3 else kwargs.get("s")
            if tracer.recording and isinstance(s, str) and s.strip() and len(tracer.drawn) < 8 * MAX_TEXTS:
                tracer.drawn.append((kwargs.get("mtext"), s))
            return original(renderer, *args, **kwargs)

        return draw

    # ------------------------------------------------------------ our final draw

    @contextlib.contextmanager
    def drawing(self, fig: Figure):
        """Record texts while `fig` is drawn; build the trace from `fig` afterwards."""
        self.recording = True
        try:
            yield
        finally:
            self.recording = False
        self.trace = shrink_trace(build_trace(fig, self.calls, self.drawn))


def _all_axes(fig) -> list:
    """The axes of `fig` and its subfigures, each once, in order."""
    axes = list(fig.axes)
    for sub in getattr(fig, "subfigs", []):
        axes += _all_axes(sub)
    return list({id(ax): ax for ax in axes}.values())


def _roles(fig, axes: list) -> dict[int, str]:
    """id(Text artist) -> role, for the figure's titled, labelled and legend texts."""
    roles: dict[int, str] = {}

    def mark(artist, role):
        if artist is not None:
            roles[id(artist)] = role

    for ax in axes:
        for title in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)):
            mark(title, "title")
        for axis in (getattr(ax, "_axis_map", None) or {"x": ax.xaxis, "y": ax.yaxis}).values():
            mark(axis.label, "label")
            mark(axis.offsetText, "tick")
            for tick in axis.majorTicks + axis.minorTicks:
                mark(tick.label1, "tick")
                mark(tick.label2, "tick")
    figures = [fig] + list(getattr(fig, "subfigs", []))
    legends = [ax.get_legend() for ax in axes] + [lg for f in figures for lg in f.legends]
    for legend in legends:
        if legend is not None:
            for text in legend.get_texts():
                mark(text, "legend")
            mark(legend.get_title(), "legend")
    for f in figures:
        mark(getattr(f, "_suptitle", None), "title")
        mark(getattr(f, "_supxlabel", None), "label")
        mark(getattr(f, "_supylabel", None), "label")
    return roles


def _hex(rgba) -> str | None:
    rgba = mcolors.to_rgba(rgba)
    return None if rgba[3] <= 0 else mcolors.to_hex(rgba, keep_alpha=False).lower()


def _colors_of(artist) -> list[str]:
    """The colours one artist shows (see the module docstring)."""
    if isinstance(artist, ScalarMappable) and artist.get_array() is not None:
        if not isinstance(artist, AxesImage) or np.ndim(artist.get_array()) == 2:
            return [f"cmap:{artist.get_cmap().name}"]
    if isinstance(artist, Line2D):
        colors = [artist.get_color()]
    elif isinstance(artist, Patch):
        colors = [artist.get_facecolor() if artist.get_fill() else artist.get_edgecolor()]
    elif isinstance(artist, Collection):
        faces = np.asarray(artist.get_facecolor()).reshape(-1, 4)
        colors = faces if (faces[:, 3] > 0).any() else np.asarray(artist.get_edgecolor()).reshape(-1, 4)
        colors = list(np.unique(colors, axis=0)[:MAX_COLORS])
    else:
        return []
    return [c for c in (_hex(color) for color in colors) if c is not None]


def _artists(obj, out: list, depth: int = 0) -> list:
    """Artists in what a plotting call returned (lists, tuples, dicts, containers), not Text."""
    if len(out) >= _MAX_ARTISTS or depth > 4:
        return out
    if isinstance(obj, Artist):
        if not isinstance(obj, Text):
            out.append(obj)
    elif isinstance(obj, dict):
        for value in obj.values():
            _artists(value, out, depth + 1)
    elif isinstance(obj, (list, tuple, Container)):
        for value in list(obj)[:_MAX_ARTISTS]:
            _artists(value, out, depth + 1)
    elif hasattr(obj, "wedges"):  # matplotlib >= 3.11 pie returns a PieContainer (not a Container)
        _artists(obj.wedges, out, depth + 1)
    return out


def build_trace(fig: Figure, calls: list, drawn: list) -> dict:
    """The trace of `fig` (see the module docstring) from recorded calls and drawn strings."""
    axes = _all_axes(fig)
    ours = {id(ax) for ax in axes}
    roles = _roles(fig, axes)
    texts = [[roles.get(id(mtext), "text"), s[:MAX_TEXT_CHARS]] for mtext, s in drawn][:MAX_TEXTS]
    types: dict[str, int] = {}
    colors: list[list[str]] = []
    seen: set[tuple[str, str]] = set()
    for ax, name, result in calls:
        if id(ax) not in ours:
            continue
        if name in types or len(types) < MAX_TYPES:
            types[name] = types.get(name, 0) + 1
        for artist in _artists(result, []):
            for color in _colors_of(artist):
                if (name, color) not in seen and len(colors) < MAX_COLORS:
                    seen.add((name, color))
                    colors.append([name, color])
    layout = []
    for ax in axes:
        spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
        if spec is None or len(layout) >= MAX_LAYOUT:
            continue
        nrows, ncols = spec.get_gridspec().get_geometry()
        grid = [nrows, ncols, spec.rowspan.start, spec.rowspan.stop - 1, spec.colspan.start, spec.colspan.stop - 1]
        layout.append([int(v) for v in grid])
    return {"texts": texts, "types": types, "colors": colors, "layout": layout}


def trace_chart(code: str) -> tuple[np.ndarray, dict]:
    """Render `code` like `render.chart.render_chart` and return (HxWx3 uint8, trace)."""
    tracer = ChartTracer()
    with tracer.installed():
        rgb = render_chart(code, tracer=tracer)
    return rgb, tracer.trace
