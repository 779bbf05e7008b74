"""Render a gallery of example charts, tables and SVGs through the sandboxed pool.

    python -m launch.gallery [--out gallery.png] [--workers 2]

Writes one PNG contact sheet and prints where it is: a quick check that the
render stack (matplotlib, WeasyPrint, cairosvg, the sandbox) works on a host.
"""
from __future__ import annotations

import argparse
import time

from PIL import Image, ImageDraw, ImageOps

import render
from render.examples import EXAMPLES


def contact_sheet(tiles: list[tuple[str, Image.Image]], tile: int = 320, columns: int = 4) -> Image.Image:
    """Lay labelled thumbnails out on a grid."""
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 24)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (label, image) in enumerate(tiles):
        x, y = (index % columns) * tile, (index // columns) * (tile + 24)
        thumb = ImageOps.contain(image, (tile - 16, tile - 16))
        sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + 24 + (tile - thumb.height) // 2))
        draw.text((x + 8, y + 6), label, fill="black")
    return sheet


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gallery.png")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with render.RenderPool(workers=args.workers) as pool:
        results = pool.map([kind for kind, _, _ in EXAMPLES], [code for _, _, code in EXAMPLES])
    tiles = []
    for (kind, name, _), result in zip(EXAMPLES, results):
        if not result.ok:
            raise SystemExit(f"gallery example {kind}/{name} failed to render: {result.error}")
        tiles.append((f"{kind}: {name} ({result.seconds * 1000:.0f} ms)", result.image))
    contact_sheet(tiles).save(args.out)
    print(f"rendered {len(tiles)} examples in {time.perf_counter() - start:.1f} s -> {args.out}")
    return args.out


if __name__ == "__main__":
    main()
