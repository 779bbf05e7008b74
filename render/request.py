"""Request validation shared by the pool (before any fork) and the renderers."""
from __future__ import annotations

from render.errors import RenderInputError

KINDS = ("chart", "table", "svg")
MAX_CODE_CHARS = 1_000_000
MAX_REQUEST_SIDE = 4096
# The largest image each renderer makes where the request leaves the size open.
MAX_CHART_PIXELS = 4096 * 4096  # any aspect
MAX_SVG_SIDE = 2048
TABLE_PAGE_PX = (1600, 6000)  # (width, height): a table is cropped from one such page


def check_request(kind, code, size) -> None:
    """Raise RenderInputError for a request no renderer should see."""
    if kind not in KINDS:
        raise RenderInputError("bad_input", f"unknown kind {kind!r}; expected one of {KINDS}")
    if not isinstance(code, str):
        raise RenderInputError("bad_input", f"code must be str, got {type(code).__name__}")
    if len(code) > MAX_CODE_CHARS:
        raise RenderInputError("too_large", f"code of {len(code)} chars exceeds {MAX_CODE_CHARS}")
    if size is not None:
        ok = (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(s, int) and 1 <= s <= MAX_REQUEST_SIDE for s in size)
        )
        if not ok:
            raise RenderInputError("bad_input", f"size must be (width, height) in 1..{MAX_REQUEST_SIDE}, got {size!r}")


def output_fits(kind: str, size, width: int, height: int) -> bool:
    """Whether a `width` x `height` image is what a request of this kind and `size` can give:
    exactly `size` when one was asked for, else within the renderer's documented maximum."""
    if size is not None:
        return (width, height) == tuple(size)
    if kind == "svg":
        return width <= MAX_SVG_SIDE and height <= MAX_SVG_SIDE
    if kind == "table":
        return width <= TABLE_PAGE_PX[0] and height <= TABLE_PAGE_PX[1]
    return width * height <= MAX_CHART_PIXELS


def max_output_bytes(kind: str, size) -> int:
    """The largest RGB payload `output_fits` can accept: a task's frame is refused unread beyond it."""
    if size is not None:
        return size[0] * size[1] * 3
    if kind == "svg":
        return MAX_SVG_SIDE * MAX_SVG_SIDE * 3
    if kind == "table":
        return TABLE_PAGE_PX[0] * TABLE_PAGE_PX[1] * 3
    return MAX_CHART_PIXELS * 3
