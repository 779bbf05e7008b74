"""Render a gallery of example charts, tables and SVGs through the sandboxed pool.

    python -m launch.gallery [--out=gallery.png] [--workers=2] [--allow_weak_sandbox]

Writes one PNG contact sheet and prints where it is: a quick check that the
render stack (matplotlib, WeasyPrint, cairosvg, the sandbox) works on a host.
"""
from __future__ import annotations

import os
import time

from absl import flags
from PIL import Image, ImageDraw, ImageOps

import render
from policy import cli
from render.examples import EXAMPLES

FLAGS = flags.FlagValues()
flags.DEFINE_string("out", "gallery.png", "the contact sheet to write; its extension picks the format",
                    flag_values=FLAGS)
flags.DEFINE_integer("workers", 2, "render workers", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("allow_weak_sandbox", False, "render even where the sandbox is incomplete (no user namespaces, "
                  "as in Colab): one warning names what is missing", flag_values=FLAGS)


def image_format(path: str) -> str:
    """The PIL format `path`'s extension names; a ValueError naming the allowed extensions otherwise."""
    extensions = Image.registered_extensions()
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions or extensions[ext] not in Image.SAVE:
        allowed = sorted(e for e, f in extensions.items() if f in Image.SAVE and f in ("PNG", "JPEG", "WEBP", "BMP",
                                                                                      "TIFF", "GIF"))
        what = f"extension {ext!r} names no image format PIL can write" if ext else "no extension to name a format"
        raise ValueError(f"--out={path}: {what}; allowed: {', '.join(allowed)}")
    return extensions[ext]


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
    cli.parse(FLAGS, argv, __doc__)
    try:
        fmt = image_format(FLAGS.out)
    except ValueError as e:
        cli.fail(str(e))
    folder = os.path.dirname(os.path.abspath(FLAGS.out))
    cli.check(os.path.isdir(folder), f"--out={FLAGS.out}: folder {folder} does not exist")
    start = time.perf_counter()
    with render.RenderPool(workers=FLAGS.workers, allow_weak_sandbox=FLAGS.allow_weak_sandbox) as pool:
        results = pool.map([kind for kind, _, _ in EXAMPLES], [code for _, _, code in EXAMPLES])
    tiles = []
    for (kind, name, _), result in zip(EXAMPLES, results):
        if not result.ok:
            raise SystemExit(f"gallery example {kind}/{name} failed to render: {result.error}")
        tiles.append((f"{kind}: {name} ({result.seconds * 1000:.0f} ms)", result.image))
    contact_sheet(tiles).save(FLAGS.out, format=fmt)
    print(f"rendered {len(tiles)} examples in {time.perf_counter() - start:.1f} s -> {FLAGS.out}")
    return FLAGS.out


if __name__ == "__main__":
    main()
