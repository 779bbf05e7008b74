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

EXAMPLES = [
    ("chart", "bar", """
import matplotlib.pyplot as plt
plt.bar(["Q1", "Q2", "Q3", "Q4"], [12, 19, 7, 15], color=["tab:red", "tab:blue", "tab:green", "tab:orange"])
plt.title("Revenue by quarter"); plt.ylabel("M$")
plt.show()
"""),
    ("chart", "lines, log scale", """
import numpy as np
import matplotlib.pyplot as plt
x = np.linspace(1, 10, 50)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(x, x ** 2, label="x^2"); ax.plot(x, np.exp(x / 2), "--", label="exp(x/2)")
ax.set_yscale("log"); ax.legend(loc="upper left"); ax.set_title("Growth")
fig.savefig("growth.png")
"""),
    ("chart", "pie", """
import matplotlib.pyplot as plt
plt.pie([45, 25, 20, 10], labels=["A", "B", "C", "D"], autopct="%1.0f%%", startangle=90)
plt.title("Market share")
"""),
    ("chart", "subplots", """
import numpy as np
import matplotlib.pyplot as plt
rng = np.random.default_rng(0)
fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.5))
a.scatter(rng.normal(size=80), rng.normal(size=80), c="purple", s=12); a.set_title("Scatter")
b.hist(rng.normal(size=500), bins=20, color="teal"); b.set_title("Histogram")
plt.tight_layout(); plt.savefig("out.png"); plt.close()
"""),
    ("table", "markdown", """
| Model | Params | Score |
|:------|-------:|:-----:|
| **Qwen3-VL-8B** | 8.8 B | 71.2 |
| Qwen3-VL-4B | 4.4 B | *66.0* |
| Qwen3-VL-2B | 2.1 B | 58.9 |
"""),
    ("table", "html, merged cells", """
<table>
  <tr><th rowspan="2">Region</th><th colspan="2">Sales</th></tr>
  <tr><th>2024</th><th>2025</th></tr>
  <tr><td>North</td><td align="right">1,204</td><td align="right">1,390</td></tr>
  <tr><td>South</td><td align="right">988</td><td align="right">1,021</td></tr>
</table>
"""),
    ("svg", "icon", """
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 100 100">
  <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
    <stop offset="0" stop-color="#ffcc00"/><stop offset="1" stop-color="#ff6600"/></linearGradient></defs>
  <circle cx="50" cy="50" r="45" fill="url(#g)" stroke="#333" stroke-width="3"/>
  <circle cx="35" cy="40" r="6" fill="#333"/><circle cx="65" cy="40" r="6" fill="#333"/>
  <path d="M30 62 Q50 80 70 62" fill="none" stroke="#333" stroke-width="4" stroke-linecap="round"/>
</svg>
"""),
    ("svg", "shapes and text", """
<svg xmlns="http://www.w3.org/2000/svg" width="240" height="160">
  <rect x="10" y="10" width="100" height="60" rx="8" fill="steelblue"/>
  <g transform="translate(170 45) rotate(30)"><rect x="-30" y="-20" width="60" height="40" fill="crimson"/></g>
  <polygon points="60,150 100,90 140,150" fill="seagreen" stroke="black"/>
  <text x="150" y="140" font-size="20" font-family="DejaVu Sans">SVG</text>
</svg>
"""),
]


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
