"""SVG tasks: generated and real icons render, are deterministic, and probes land on the named part."""
import random

import numpy as np
import pytest

import render
from visual_erm.tasks import svg as S
from visual_erm.tasks import svg_geometry as G
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
    return (np.abs(img - MAGENTA) <= 40).all(axis=-1)


def one_of_each_family():
    """{family: Task} from the first seeds that give each generated family."""
    found = {}
    for seed in range(400):
        task = S.generate(random.Random(seed), seed)
        found.setdefault(task.source.split("/", 1)[1], task)
        if set(S.GENERATORS) <= set(found):
            return {name: found[name] for name in S.GENERATORS}
    raise AssertionError(f"families never generated: {set(S.GENERATORS) - set(found)}")


FAMILIES = one_of_each_family()


def test_every_family_and_every_vendored_icon_renders(pool):
    icons = S.default_icons()
    assert len(icons) >= 40 and all(t.source.startswith("svg/icon:bootstrap/") for t in icons)
    tasks = list(FAMILIES.values()) + icons
    for task, result in zip(tasks, pool.map("svg", [t.code for t in tasks])):
        img = pixels(result)
        assert img.shape == (128, 128, 3), task.source
        ink = (img < 230).any(axis=-1).mean()
        assert 0.03 < ink < 0.95, (task.source, ink)


def test_generate_is_deterministic_per_seed():
    first = [S.generate(random.Random(seed), seed) for seed in range(30)]
    again = [S.generate(random.Random(seed), seed) for seed in range(30)]
    assert [t.code for t in first] == [t.code for t in again]
    assert len({t.code for t in first}) > 20
    assert any(t.source.startswith("svg/icon:") for t in first)  # the real-icon share
    for task in first:
        assert task.kind == "svg" and S.to_svg(task.spec.root) == task.code


def test_probes_land_inside_the_labelled_parts(pool):
    """Each labelled part, painted PROBE_COLOR, shows up inside its computed box and nowhere else."""
    jobs = []
    for task in FAMILIES.values():
        root = task.spec.root
        parent_of = G.parents(root)
        for path, label in task.spec.labels.items():
            box = G.root_box(root, S.element_at(root, path), parent_of)
            jobs.append((task.source, label, box, S.to_svg(root, probe=path)))
    images = pool.map("svg", [code for *_, code in jobs])
    scale, hidden = S.DISPLAY_PX / 64, []
    for (source, label, box, _), result in zip(jobs, images):
        mask = magenta(pixels(result))
        if not mask.any():  # wholly behind another part (a sun ray behind the cloud)
            hidden.append(label)
            continue
        ys, xs = np.nonzero(mask)
        margin = 4 * scale  # strokes and round caps reach past the geometric box
        assert xs.min() >= box[0] * scale - margin and xs.max() <= box[2] * scale + margin, (source, label)
        assert ys.min() >= box[1] * scale - margin and ys.max() <= box[3] * scale + margin, (source, label)
    assert len(hidden) <= 0.1 * len(jobs) and all("ray" in label for label in hidden), hidden


def test_ordinal_labels_run_left_to_right(pool):
    bars = FAMILIES["bars"].spec
    ordered = sorted((p for p, label in bars.labels.items() if "bar from the left" in label),
                     key=lambda p: S.ORDINALS.index(bars.labels[p].split()[1]))
    centres = []
    for result in pool.map("svg", [S.to_svg(bars.root, probe=p) for p in ordered]):
        centres.append(np.nonzero(magenta(pixels(result)))[1].mean())
    assert len(centres) >= 3 and centres == sorted(centres)


def test_probing_a_group_paints_every_descendant_but_keeps_unpainted_parts_unpainted():
    root = FAMILIES["bars"].spec.root
    group = next(el for el in root.iter() if el.tag == "g")
    painted = S.to_svg(root, probe=group)
    probed = S.parse_icon(painted, size=None)
    bars = [el for el in probed.iter() if el.tag == "g"][0]
    assert all(bar.get("fill") == PROBE_COLOR for bar in bars)
    assert all(el.get("fill") != PROBE_COLOR for el in probed.iter() if el.tag == "polyline")
    face = FAMILIES["face"].spec
    mouth = next(p for p, label in face.labels.items() if "mouth" in label)
    probed = S.parse_icon(S.to_svg(face.root, probe=mouth), size=None)
    element = S.element_at(probed, mouth)
    assert element.get("stroke") == PROBE_COLOR
    assert element.get("fill") in ("none", PROBE_COLOR)  # an open mouth is filled, a smile only stroked
    if "open" not in face.labels[mouth]:
        assert element.get("fill") == "none"


def test_probe_reaches_inherited_paint_and_overrides_style():
    root = S.parse_icon('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" fill="currentColor">'
                        '<g><path d="M0 0h5v5z"/></g><rect width="2" height="2" style="fill:red;stroke:blue"/>'
                        '<circle r="2" fill="none" stroke="green"/></svg>')
    out = S.parse_icon(S.to_svg(root, probe=[(0,), (1,), (2,)]), size=None)
    path, rect, circle = out[0][0], out[1], out[2]
    assert path.get("fill") == PROBE_COLOR and path.get("stroke") is None  # inherited fill, no stroke
    assert rect.get("fill") == rect.get("stroke") == PROBE_COLOR and "style" not in rect.attrib
    assert circle.get("fill") == "none" and circle.get("stroke") == PROBE_COLOR


def test_load_icon_folder_reads_plain_trees(tmp_path, pool):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        'width="24" height="12" inkscape:version="1.0"><rect width="24" height="12" fill="#1e88e5"/>'
        '<inkscape:thing/></svg>')
    (tmp_path / "sub" / "b.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6"/></svg>')
    tasks = S.load_icon_folder(tmp_path, prefix="mine")
    assert [t.source for t in tasks] == ["svg/icon:mine/a.svg", "svg/icon:mine/sub/b.svg"]
    assert "inkscape" not in tasks[0].code and 'viewBox="0 0 24 12"' in tasks[0].code
    assert 'width="128" height="64"' in tasks[0].code and all(t.spec.labels == {} for t in tasks)
    images = [pixels(r) for r in pool.map("svg", [t.code for t in tasks])]
    assert images[0].shape == (64, 128, 3) and images[1].shape == (128, 128, 3)
    assert (images[0] == [0x1E, 0x88, 0xE5]).all(axis=-1).mean() > 0.95
