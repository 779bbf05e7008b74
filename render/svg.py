"""SVG source -> RGB pixels with cairosvg, refusing anything that reaches outside.

Checks happen on a parsed tree before cairosvg sees the bytes: DTDs (and with
them entity expansion: billion laughs, XXE) are refused by defusedxml, and any
href or CSS url() that is not a fragment or a data: URL is refused by name.
"""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import cairosvg
import defusedxml
import defusedxml.ElementTree as DET
import numpy as np
from PIL import Image

from render.errors import RenderInputError
from render.request import MAX_SVG_SIDE

MAX_SVG_BYTES = 2_000_000
MAX_SIDE = MAX_SVG_SIDE
DEFAULT_SIZE = (300, 150)  # a browser's default replaced-element size
_UNIT_PX = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4}
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*$")
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
_HREF_KEYS = ("href", "{http://www.w3.org/1999/xlink}href")


def _local_reference(value: str) -> bool:
    value = value.strip()
    return value == "" or value.startswith("#") or value.lower().startswith("data:")


def _check_references(root: ET.Element) -> None:
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        for key in _HREF_KEYS:
            value = element.get(key)
            if value is not None and not _local_reference(value):
                raise RenderInputError("forbidden", f"external reference in <{tag}>: {value[:80]}")
        # Every text node inside <style> (also after a child element or a comment), not just the first.
        css = (element.get("style") or "") + ("".join(element.itertext()) if tag == "style" else "")
        if tag == "style" and "@import" in css.lower():
            raise RenderInputError("forbidden", "CSS @import in <style> is not allowed")
        for url in _CSS_URL.findall(css) + _CSS_URL.findall(" ".join(element.attrib.values())):
            if not _local_reference(url):
                raise RenderInputError("forbidden", f"external url() in <{tag}>: {url[:80]}")


def _length_px(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if not match or match.group(2) not in _UNIT_PX:
        return None
    return float(match.group(1)) * _UNIT_PX[match.group(2)]


def natural_size(root: ET.Element) -> tuple[int, int]:
    """The size a browser would give the root <svg>, clamped to MAX_SIDE."""
    width, height = _length_px(root.get("width")), _length_px(root.get("height"))
    view = (root.get("viewBox") or "").replace(",", " ").split()
    vw = vh = None
    if len(view) == 4:
        try:
            vw, vh = float(view[2]), float(view[3])
        except ValueError:
            vw = vh = None
    if vw and vh and vw > 0 and vh > 0:
        if width is None and height is None:
            width, height = vw, vh
        elif width is None:
            width = height * vw / vh
        elif height is None:
            height = width * vh / vw
    width = width if width and width > 0 else DEFAULT_SIZE[0]
    height = height if height and height > 0 else DEFAULT_SIZE[1]
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def parse_svg(code: str) -> ET.Element:
    """Parse and vet SVG source; typed errors for anything unsafe or malformed."""
    data = code.encode("utf-8", errors="replace")
    if len(data) > MAX_SVG_BYTES:
        raise RenderInputError("too_large", f"SVG of {len(data)} bytes exceeds {MAX_SVG_BYTES}")
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        raise RenderInputError("forbidden", f"DTDs and XML entities are not allowed ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        raise RenderInputError("syntax", f"malformed XML: {exc}") from exc
    if not isinstance(root.tag, str) or root.tag.rsplit("}", 1)[-1] != "svg":
        raise RenderInputError("bad_input", f"root element is <{root.tag}>, not <svg>")
    _check_references(root)
    return root


def svg_to_rgb(code: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Render vetted SVG with cairosvg at `size` (or its natural size) onto white."""
    root = parse_svg(code)
    width, height = size if size is not None else natural_size(root)
    if width * height > MAX_SIDE * MAX_SIDE:
        raise RenderInputError("too_large", f"output of {width}x{height} px is too large")
    png = cairosvg.svg2png(
        bytestring=code.encode("utf-8"), output_width=width, output_height=height, unsafe=False
    )
    return composite_on_white(Image.open(io.BytesIO(png)))


def composite_on_white(image: Image.Image) -> np.ndarray:
    """RGBA -> RGB over a white page, as a browser shows a transparent SVG."""
    page = Image.new("RGBA", image.size, (255, 255, 255, 255))
    page.alpha_composite(image.convert("RGBA"))
    return np.asarray(page.convert("RGB"))
