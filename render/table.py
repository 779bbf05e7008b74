"""Markdown or HTML tables -> RGB pixels through a real CSS layout engine.

WeasyPrint lays the table out (colspan/rowspan, alignment, bold/italic, text
wrapping) with Pango, as a browser would, without a browser: it starts in
milliseconds inside the sandbox, runs no scripts, and fetches nothing (its
URL fetcher allows only data: URLs and fails the render on any other). pypdfium2 rasterises the PDF page,
cropped to the drawn content.
"""
from __future__ import annotations

import contextlib
import threading

import markdown_it
import numpy as np
import pypdfium2 as pdfium
import weasyprint
import weasyprint.pdf.fonts
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from render.errors import RenderInputError
from render.request import TABLE_PAGE_PX

MAX_TABLE_CHARS = 200_000
PAGE_WIDTH_PX, PAGE_HEIGHT_PX = TABLE_PAGE_PX
PADDING_PX = 8
PX_PER_PT = 96 / 72
STYLESHEET = f"""
@page {{ size: {PAGE_WIDTH_PX}px {PAGE_HEIGHT_PX}px; margin: 0 }}
html, body {{ margin: 0; padding: {PADDING_PX}px; }}
body {{ font-family: 'DejaVu Sans'; font-size: 14px; color: black; line-height: 1.3; }}
table {{ border-collapse: collapse; margin: 0; }}
th, td {{ border: 1px solid #333; padding: 4px 8px; vertical-align: middle; }}
th {{ font-weight: bold; background: #eeeeee; }}
caption {{ font-weight: bold; padding-bottom: 4px; }}
"""
_MARKDOWN = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")
_CSS = weasyprint.CSS(string=STYLESHEET)


_FONT_PATCH = threading.Lock()


@contextlib.contextmanager
def _whole_fonts():
    """Embed whole fonts instead of subsetting them with fontTools.

    Our PDF lives only until pdfium rasterises it, and subsetting DejaVu is ~90%
    of WeasyPrint's time for a small table (~400 ms -> ~50 ms). Scoped, so other
    WeasyPrint users in the process still get subset fonts.
    """
    with _FONT_PATCH:
        clean = weasyprint.pdf.fonts.Font.clean
        weasyprint.pdf.fonts.Font.clean = lambda self, to_unicode, hinting: None
        try:
            yield
        finally:
            weasyprint.pdf.fonts.Font.clean = clean


def is_html(code: str) -> bool:
    return "<table" in code.lower()


def table_html(code: str) -> str:
    """The HTML document for a Markdown (GFM pipe) or HTML table."""
    if len(code) > MAX_TABLE_CHARS:
        raise RenderInputError("too_large", f"table source of {len(code)} chars exceeds {MAX_TABLE_CHARS}")
    html = code if is_html(code) else _MARKDOWN.render(code)
    if "<table" not in html.lower():
        raise RenderInputError("bad_input", "no Markdown pipe table or HTML <table> found")
    return html


def _content_box_pt(page) -> tuple[float, float, float, float]:
    """Union of the bounds of everything drawn on the page, in PDF points."""
    boxes = [obj.get_bounds() for obj in page.get_objects(max_depth=3)]
    if not boxes:
        raise RenderInputError("bad_input", "the table rendered to an empty page")
    left = min(b[0] for b in boxes)
    bottom = min(b[1] for b in boxes)
    right = max(b[2] for b in boxes)
    top = max(b[3] for b in boxes)
    return left, bottom, right, top


class _DataOnlyFetcher(URLFetcher):
    """Fetches data: URLs only, and remembers every other URL it was asked for: WeasyPrint
    swallows some fetch errors (an inline SVG's <image>), and the render must fail anyway."""

    def __init__(self):
        super().__init__(allowed_protocols=("data",), fail_on_errors=True, timeout=1)
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        if not url.lower().startswith("data:"):
            self.refused.append(url)
            raise FatalURLFetchingError(f"Error fetching {url[:80]!r}")
        return super().fetch(url, headers)


def render_table(code: str) -> np.ndarray:
    """Lay out the table, rasterise the first page and crop it to the table."""
    html = table_html(code)
    fetcher = _DataOnlyFetcher()
    try:
        with _whole_fonts():
            pdf_bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(
                stylesheets=[_CSS], uncompressed_pdf=True)
    except FatalURLFetchingError as exc:
        raise RenderInputError("forbidden", f"tables may not load external resources ({exc})"[:200]) from exc
    except Exception as exc:
        raise RenderInputError("runtime", f"HTML layout failed: {type(exc).__name__}: {exc}"[:200]) from exc
    if fetcher.refused:
        raise RenderInputError("forbidden", f"tables may not load external resources ({fetcher.refused[0][:80]})")
    document = pdfium.PdfDocument(pdf_bytes)
    try:
        page = document[0]
        width_pt, height_pt = page.get_size()
        pad = PADDING_PX / PX_PER_PT
        left, bottom, right, top = _content_box_pt(page)
        crop = (
            max(0.0, left - pad),
            max(0.0, bottom - pad),
            max(0.0, width_pt - right - pad),
            max(0.0, height_pt - top - pad),
        )
        bitmap = page.render(scale=PX_PER_PT, crop=crop, fill_color=(255, 255, 255, 255))
        return np.array(bitmap.to_pil().convert("RGB"))
    finally:
        document.close()
