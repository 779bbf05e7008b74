"""Real-world SVG icons render through the sandbox exactly as plain cairosvg renders them.

The icons are vendored, unmodified, from two npm packages (see the README.md and
licence files next to them): Bootstrap Icons (monochrome; circles, transforms,
several paths, fill-rule evenodd) and Twemoji (colourful; ellipses, many paths).
"""
import io
import pathlib

import cairosvg
import numpy as np
import pytest
from PIL import Image

import render

ICONS = pathlib.Path(__file__).parent / "icons"
BOOTSTRAP = sorted((ICONS / "bootstrap").glob("*.svg"))
TWEMOJI = sorted((ICONS / "twemoji").glob("*.svg"))
ALL_ICONS = BOOTSTRAP + TWEMOJI
SIZES = [(64, 64), (128, 128)]


def _id(path):
    return f"{path.parent.name}/{path.stem}"


def plain_cairosvg(svg: str, size) -> np.ndarray:
    """What an unsandboxed program gets: cairosvg, then composited onto white."""
    width, height = size
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=width, output_height=height)
    image = Image.open(io.BytesIO(png))
    page = Image.new("RGBA", image.size, (255, 255, 255, 255))
    page.alpha_composite(image.convert("RGBA"))
    return np.asarray(page.convert("RGB"))


@pytest.fixture(scope="module")
def icon_results():
    """Every icon at every size, rendered through one pool in a single batch."""
    jobs = [(path, size) for path in ALL_ICONS for size in SIZES]
    with render.RenderPool(workers=2, timeout_s=20) as pool:
        futures = [pool.submit("svg", path.read_text(), size=size) for path, size in jobs]
        return {(path.name, size): future.result() for (path, size), future in zip(jobs, futures)}


def test_vendored_icons_and_licences_are_present():
    assert len(BOOTSTRAP) >= 12 and len(TWEMOJI) >= 6
    for folder in ("bootstrap", "twemoji"):
        assert (ICONS / folder / "README.md").is_file()
        assert any(p.name.startswith("LICENSE") for p in (ICONS / folder).iterdir())
    corpus = "".join(p.read_text() for p in BOOTSTRAP)
    for feature in ('fill-rule="evenodd"', "<circle", "transform=", "<rect"):
        assert feature in corpus, f"the Bootstrap sample lost its {feature} icons"
    assert any(p.read_text().count("<path") >= 4 for p in BOOTSTRAP)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("path", ALL_ICONS, ids=_id)
def test_icon_renders_exactly_like_plain_cairosvg(icon_results, path, size):
    result = icon_results[(path.name, size)]
    assert result.error is None, result.error
    assert result.image.mode == "RGB" and result.image.size == size
    got = np.asarray(result.image)
    expected = plain_cairosvg(path.read_text(), size)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), f"{int((got != expected).any(-1).sum())} pixels differ"
    # Not blank (nor a solid block): a real share, but not all, of the pixels is ink.
    ink = (got != 255).any(axis=-1)
    assert 0.02 < ink.mean() < 0.99, f"ink fraction {ink.mean():.3f}"


def test_twemoji_are_colourful(icon_results):
    for path in TWEMOJI:
        rgb = np.asarray(icon_results[(path.name, (128, 128))].image).astype(int)
        chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
        assert (chroma > 60).mean() > 0.05, f"{path.name} lost its colours"


def test_bootstrap_icons_are_black_on_white(icon_results):
    for path in BOOTSTRAP:
        rgb = np.asarray(icon_results[(path.name, (64, 64))].image).astype(int)
        assert (rgb.max(axis=-1) == rgb.min(axis=-1)).all(), f"{path.name} is not grey"
        assert rgb.min() == 0, f"{path.name} has no solid black"
