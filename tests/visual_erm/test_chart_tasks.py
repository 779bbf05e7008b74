"""Chart generators: every type renders, is reproducible from its seed, and draws what its spec says.

Probe footprints are the pixel check's evidence, so they are tested for landing on
the element they name (a title at the top, one bar as a filled rectangle, ...).
"""
import random

import numpy as np
import pytest
from scipy import ndimage

import render
from visual_erm.perturb.verify import changed_mask
from visual_erm.tasks import chart as C
from visual_erm.tasks.base import Task


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=30) as p:
        yield p


def images(pool, codes):
    results = pool.map("chart", codes)
    for result in results:
        assert result.error is None, result.error
    return [np.asarray(r.image, dtype=np.int16) for r in results]


def probe_mask(pool, spec, probe):
    reference, painted = images(pool, [C.print_code(spec), C.print_code(spec, probe=probe)])
    mask = changed_mask(reference, painted)
    assert mask.any(), f"probe {probe} painted nothing"
    return mask


def bbox(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def find(name, ok=lambda spec: True):
    """The first seed whose task of generator `name` satisfies `ok` (deterministic)."""
    for seed in range(200):
        task = C.GENERATORS[name](random.Random(seed), seed)
        if ok(task.spec):
            return task
    raise AssertionError(f"no {name} task satisfies the condition")


def test_every_generator_renders_for_several_seeds(pool):
    tasks = [C.GENERATORS[name](random.Random(seed), seed) for name in sorted(C.GENERATORS) for seed in range(3)]
    for task, result in zip(tasks, pool.map("chart", [t.code for t in tasks])):
        assert result.error is None, (task.source, task.seed, result.error)
        assert result.image.size[0] > 300 and result.image.size[1] > 300
    for task in tasks:
        assert isinstance(task, Task) and task.kind == "chart" and task.source.startswith("chart/")
        assert isinstance(task.spec, C.ChartSpec) and task.code == C.print_code(task.spec)
        assert task.code.startswith("import matplotlib.pyplot as plt") and task.code.rstrip().endswith("plt.show()")


@pytest.mark.parametrize("name", sorted(C.GENERATORS))
def test_generators_are_deterministic_per_seed(name):
    first, again = (C.GENERATORS[name](random.Random(11), 11) for _ in range(2))
    assert first == again
    others = {C.GENERATORS[name](random.Random(s), s).code for s in range(5)}
    assert len(others) == 5
    assert first.source == f"chart/{name}" and first.seed == 11


def test_generate_covers_every_type_reproducibly():
    sources = [C.generate(random.Random(s), s).source for s in range(150)]
    assert set(sources) == {f"chart/{name}" for name in C.GENERATORS}
    first = [C.generate(random.Random(s), s).code for s in range(5)]
    assert first == [C.generate(random.Random(s), s).code for s in range(5)]


def test_spec_types_match_the_generator_and_chart_types():
    assert {"bar", "grouped_bar", "stacked_bar", "barh", "line", "scatter", "pie", "hist", "area",
            "stacked_area", "box", "heatmap", "subplots"} <= set(C.GENERATORS)  # fmt: skip
    for name in C.PANELS:
        task = C.GENERATORS[name](random.Random(3), 3)
        assert [p.type for p in task.spec.panels] == [name]
    multi = C.GENERATORS["subplots"](random.Random(3), 3).spec
    assert len(multi.panels) == multi.layout[0] * multi.layout[1] > 1


def test_title_probe_lands_in_the_top_of_the_image(pool):
    spec = find("bar").spec
    mask = probe_mask(pool, spec, ("title", 0))
    top, bottom, _, _ = bbox(mask)
    assert bottom < 0.15 * mask.shape[0]


def test_one_bar_probe_is_a_filled_vertical_rectangle(pool):
    spec = find("bar", lambda s: not s.panels[0].annotations and not s.panels[0].value_labels).spec
    values = spec.panels[0].series[0].values
    mask = probe_mask(pool, spec, ("point", 0, 0, values.index(max(values))))
    top, bottom, left, right = bbox(mask)
    assert bottom - top > right - left > 10
    assert mask[top:bottom, left:right].mean() > 0.95  # a rectangle, not scattered pixels
    assert ndimage.label(mask)[1] == 1


def test_horizontal_bar_probe_is_a_horizontal_rectangle(pool):
    spec = find("barh", lambda s: not s.panels[0].annotations and not s.panels[0].value_labels).spec
    values = spec.panels[0].series[0].values
    mask = probe_mask(pool, spec, ("point", 0, 0, values.index(max(values))))
    top, bottom, left, right = bbox(mask)
    assert right - left > bottom - top > 10
    assert mask[top:bottom, left:right].mean() > 0.95


def test_subplot_title_probe_lands_in_its_quadrant(pool):
    spec = find("subplots", lambda s: s.layout == (2, 2) and s.panels[1].title).spec
    mask = probe_mask(pool, spec, ("title", 1))  # panel 1 is top right
    top, bottom, left, right = bbox(mask)
    height, width = mask.shape
    assert bottom < height / 2 and left > width / 2


def test_legend_probe_lands_where_its_loc_says(pool):
    spec = find("grouped_bar", lambda s: s.panels[0].legend_loc in ("upper left", "lower right")).spec
    mask = probe_mask(pool, spec, ("legend", 0))
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    if spec.panels[0].legend_loc == "upper left":
        assert rows.mean() < height / 2 and cols.mean() < width / 2
    else:
        assert rows.mean() > height / 2 and cols.mean() > width / 2


def test_series_probe_paints_only_that_line(pool):
    spec = find("line", lambda s: len(s.panels[0].series) >= 2).spec
    first = probe_mask(pool, spec, ("series", 0, 0))
    second = probe_mask(pool, spec, ("series", 0, 1))
    assert (first & ~second).sum() > 0.5 * first.sum()  # two different lines, mostly disjoint


def test_heatmap_cell_probe_is_one_cell(pool):
    spec = find("heatmap").spec
    panel = spec.panels[0]
    whole = probe_mask(pool, spec, ("data", 0))
    cell = probe_mask(pool, spec, ("point", 0, 1, 2))
    assert (cell & ~whole).sum() == 0
    expected = whole.sum() / (len(panel.series) * len(panel.categories))
    assert 0.6 * expected < cell.sum() < 1.3 * expected


def test_pie_wedge_probe_lies_inside_the_pie(pool):
    spec = find("pie").spec
    whole = probe_mask(pool, spec, ("series", 0, 0))
    wedge = probe_mask(pool, spec, ("point", 0, 0, 0))
    assert 0 < wedge.sum() < whole.sum() and (wedge & ~whole).sum() < 0.05 * wedge.sum()


def test_panel_positions_name_subplots():
    spec = C.ChartSpec(panels=(C.Panel("bar", ()),) * 4, layout=(2, 2))
    assert [C.panel_position(spec, p) for p in range(4)] == [
        "subplot 1 (top left)", "subplot 2 (top right)", "subplot 3 (bottom left)", "subplot 4 (bottom right)"]
    assert C.where(spec, 1, "title") == "title in subplot 2 (top right)"
    assert C.where(C.ChartSpec(panels=(C.Panel("bar", ()),)), 0, "title") == "title"
