"""Table tasks: generators render, are deterministic, and probes paint exactly the addressed cells."""
import random

import numpy as np
import pytest

import render
from visual_erm.tasks import table as T
from visual_erm.tasks.base import PROBE_COLOR

MAGENTA = np.array([int(PROBE_COLOR[i:i + 2], 16) for i in (1, 3, 5)])


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=30) as p:
        yield p


def pixels(result) -> np.ndarray:
    assert result.error is None, result.error
    return np.asarray(result.image).astype(int)


def magenta(img: np.ndarray) -> np.ndarray:
    return (np.abs(img - MAGENTA) <= 8).all(axis=-1)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max(), ys.max()


def merged_model() -> T.TableModel:
    """Region (rowspan 2) | FY2023 over Q1 Q2 (colspan 2) | Total (rowspan 2); two body rows."""
    header = [[T.Cell("Region", rowspan=2), T.Cell("FY2023", colspan=2), T.Cell("Total", rowspan=2)],
              [T.Cell("Q1"), T.Cell("Q2")]]
    def number(v):
        return T.Cell.number(v, "{:,d}")

    body = [[T.Cell("Europe"), number(1240), number(1310), number(2550)],
            [T.Cell("Asia"), number(980), number(1020), number(2000)]]
    return T.TableModel(header, body, ["left", "right", "right", "right"], "Revenue (USD thousands)")


def test_layout_names_and_phrases():
    model = merged_model()
    covered = T.layout(model)
    assert covered[(1, 0)] == (0, 0) and covered[(1, 3)] == (0, 2)  # rowspans reach the second header row
    assert covered[(0, 2)] == (0, 1)  # the colspan covers both quarter columns
    assert [T.column_name(model, c) for c in range(4)] == ["Region", "Q1", "Q2", "Total"]
    assert T.row_phrase(model, 2) == "row 1 ('Europe')" and T.row_phrase(model, 0) == "header row 1"
    assert model.has_merges and model.ncols == 4


def test_markdown_refuses_what_it_cannot_say():
    with pytest.raises(ValueError):
        T.to_markdown(merged_model())


def test_every_generator_renders_plain_and_merged(pool):
    models = [gen(random.Random(seed), merged) for seed, gen in enumerate(T.GENERATORS.values()) for merged in (0, 1)]
    results = pool.map("table", [T.to_html(m) for m in models])
    for model, result in zip(models, results):
        img = pixels(result)
        assert img.shape[0] > 60 and img.shape[1] > 100
        assert model.ncols == len(model.align)
        assert all(sum(c.colspan for c in row) <= model.ncols for row in model.rows)


def test_generate_is_deterministic_and_varied(pool):
    tasks = [T.generate(random.Random(seed), seed) for seed in range(12)]
    again = [T.generate(random.Random(seed), seed) for seed in range(12)]
    assert [t.code for t in tasks] == [t.code for t in again]
    assert len({t.code for t in tasks}) == 12
    assert {t.source for t in tasks} == {"table/markdown", "table/html"}
    for task in tasks:
        assert task.kind == "table" and isinstance(task.spec, T.TableModel)
        if task.source == "table/markdown":
            assert "<table" not in task.code and not task.spec.has_merges
    results = pool.map("table", [t.code for t in tasks[:6]])
    assert all(r.error is None for r in results)


def test_markdown_and_html_render_identically(pool):
    task = next(t for t in (T.generate(random.Random(s), s) for s in range(50)) if t.source == "table/markdown")
    md, html = pool.map("table", [task.code, T.to_html(task.spec)])
    np.testing.assert_array_equal(pixels(md), pixels(html))


def test_probes_paint_the_addressed_cell_row_column_and_caption(pool):
    model = merged_model()
    probes = [None, ("cell", 2, 1), ("row", 2), ("column", 1), ("cell", 3, 3), ("cell", 0, 1), "caption",
              [("cell", 2, 1), ("cell", 3, 3)]]
    images = [pixels(r) for r in pool.map("table", [T.to_html(model, probe=p) for p in probes])]
    plain, cell, row, column, far, header, caption, both = images
    assert not magenta(plain).any()
    for img in images[1:]:
        changed = (np.abs(img - plain) > 24).any(axis=-1)
        assert magenta(img).any()
        # nothing outside the painted boxes (and their shared borders) changes: the probe moves no layout
        inner, outer = bbox(magenta(img)), bbox(changed)
        assert outer[0] >= inner[0] - 3 and outer[1] >= inner[1] - 3
        assert outer[2] <= inner[2] + 3 and outer[3] <= inner[3] + 3
    # the cell is where its row and its column cross
    assert (magenta(cell) <= (magenta(row) & magenta(column))).all()
    assert magenta(cell).sum() > 0.8 * (magenta(row) & magenta(column)).sum()
    # the bottom-right body cell is right of and below the first body cell; header and caption above
    assert bbox(magenta(far))[0] > bbox(magenta(cell))[2] and bbox(magenta(far))[1] > bbox(magenta(cell))[3]
    assert bbox(magenta(header))[3] < bbox(magenta(cell))[1]
    assert bbox(magenta(caption))[3] < bbox(magenta(header))[1]
    # the merged header cell spans both quarter columns
    assert bbox(magenta(header))[2] - bbox(magenta(header))[0] > 1.8 * (bbox(magenta(cell))[2] - bbox(magenta(cell))[0])
    assert magenta(both).sum() == pytest.approx(magenta(cell).sum() + magenta(far).sum(), rel=0.02)
