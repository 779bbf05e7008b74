"""SVG error injection: every edit type's label survives the pixel check, on generated and real icons.

`verify` keeps an edit only if its rendered change touches the footprint (the
element painted PROBE_COLOR) of the element its location names; each test also
pins the category and what the location must mention.
"""
import dataclasses
import random

import pytest

import render
from visual_erm.perturb import svg as P
from visual_erm.perturb.base import NotApplicable, Perturbation
from visual_erm.perturb.verify import verify
from visual_erm.schema import CATEGORIES
from visual_erm.tasks import svg as S
from visual_erm.tasks import svg_geometry as G
from visual_erm.tasks.base import Task

EXPECTED = {  # edit type -> (category, a word its location must contain)
    "move_element": ("structure_error", "the "), "resize_element": ("shape_error", "the "),
    "recolour_element": ("style_error", "the "), "delete_element": ("structure_error", "the "),
    "add_element": ("structure_error", "the extra "), "change_stroke_width": ("style_error", "the "),
    "change_text": ("text_symbol_error", "'"), "rotate_element": ("shape_error", "the "),
    "change_corner_radius": ("shape_error", "the "), "reorder_elements": ("structure_error", " and "),
}  # fmt: skip
REAL_EDITS = ("move_element", "resize_element", "recolour_element", "delete_element", "add_element",
              "rotate_element", "change_corner_radius")  # Bootstrap Icons: one colour, no strokes, no text
ICONS = S.default_icons()


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=30) as p:
        yield p


def generated(seeds=range(400)):
    for seed in seeds:
        task = S.generate(random.Random(seed), seed)
        if not task.source.startswith("svg/icon:"):
            yield seed, task


def first_fit(name: str, tasks):
    for seed, task in tasks:
        try:
            return task, P.perturb(task, random.Random(seed), 1, names=[name])
        except NotApplicable:
            continue
    raise AssertionError(f"no task fits {name}")


def check_single(pool, name, task, perturbation):
    category, word = EXPECTED[name]
    (edit,) = perturbation.edits
    assert edit.name == name and edit.category == category and word in edit.location
    assert edit.single_code == perturbation.code != task.code
    assert "#ff00ff" in edit.footprint[1] and "data-erm-key" not in perturbation.code + "".join(edit.footprint)
    verdict = verify(pool, "svg", task.code, perturbation)
    assert verdict.kept, verdict.reason
    (label,) = verdict.discrepancies
    assert (label.category, label.location, label.description) == (category, edit.location, edit.description)


def test_registry_matches_the_svg_categories():
    assert set(P.EDITS) == set(EXPECTED) == set(P.CATEGORY)
    assert set(P.CATEGORY.values()) == set(CATEGORIES["svg"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_edit_type_is_labelled_right_on_generated_icons(pool, name):
    task, perturbation = first_fit(name, generated())
    check_single(pool, name, task, perturbation)


@pytest.mark.parametrize("name", REAL_EDITS)
def test_each_applicable_edit_type_is_labelled_right_on_real_icons(pool, name):
    task, perturbation = first_fit(name, enumerate(ICONS))
    assert task.source.startswith("svg/icon:bootstrap/")
    check_single(pool, name, task, perturbation)


def test_edits_that_need_what_real_icons_lack_do_not_apply():
    heart = next(t for t in ICONS if t.source.endswith("/heart-fill.svg"))
    for name in ("change_text", "change_stroke_width", "reorder_elements", "change_corner_radius"):
        with pytest.raises(NotApplicable):
            P.perturb(heart, random.Random(0), 1, names=[name])


def test_zero_edits_render_identically(pool):
    for task in (next(generated())[1], ICONS[0]):
        perturbation = P.perturb(task, random.Random(1), 0)
        assert perturbation == Perturbation(task.code, ())
        verdict = verify(pool, "svg", task.code, perturbation)
        assert verdict.kept and verdict.discrepancies == ()


def test_multi_edit_pairs_verify_on_generated_and_real_icons(pool):
    cases = [(seed, task, 4) for seed, task in generated(range(8))]
    cases += [(seed, ICONS[seed], 3) for seed in (5, 23, 34)]
    ran = 0
    for seed, task, n in cases:
        try:
            perturbation = P.perturb(task, random.Random(seed), n)
        except NotApplicable:  # small icons: claimed subtrees leave too few free elements
            continue
        assert len(perturbation.edits) == n
        verdict = verify(pool, "svg", task.code, perturbation)
        assert verdict.kept, (task.source, verdict.reason)
        ran += 1
    assert ran >= 7


def test_edits_touch_different_elements():
    for seed, task in generated(range(20)):
        try:
            perturbation = P.perturb(task, random.Random(seed), 4)
        except NotApplicable:
            continue
        names = [e.name for e in perturbation.edits]
        assert names.count("add_element") <= 1
        assert len({e.location for e in perturbation.edits}) == 4, names


def test_stroke_width_scales_a_groups_strokes_and_what_it_inherits():
    shaft = '<line x1="0" y1="5" x2="10" y2="5" stroke="black" stroke-width="4"/>'
    rays = '<g stroke="red"><line x1="0" y1="0" x2="10" y2="10"/></g>'
    code = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><g>{shaft}</g>{rays}</svg>'
    root = S.parse_icon(code)
    task = Task("svg", S.to_svg(root), "svg/test", 0, S.SvgIcon(root, {(0,): "the arrow", (1,): "the rays"}))
    for seed in range(20):
        (edit,) = P.perturb(task, random.Random(seed), 1, names=["change_stroke_width"]).edits
        out = S.parse_icon(edit.single_code, size=None)
        factor = float(edit.description.split("about ")[1].split(" times")[0])
        shaft_width, ray_width = (  # the width each line is drawn with: its own, else its group's, else 1
            next((float(n.get("stroke-width")) for n in (line, group) if n.get("stroke-width")), 1.0)
            for line, group in ((out[0][0], out[0]), (out[1][0], out[1])))
        if edit.location == "the arrow" or "black" in edit.location:
            assert (shaft_width, ray_width) == (pytest.approx(4 * factor, abs=0.01), 1.0)
        else:
            assert (shaft_width, ray_width) == (4.0, pytest.approx(factor, abs=0.01))  # scaled inherited default


def test_reorder_brings_the_back_element_just_in_front():
    task, perturbation = first_fit("reorder_elements", generated())
    (edit,) = perturbation.edits
    back, front = edit.location.split(" and ", 1)
    assert edit.description.startswith(back) and f"in front of {front}" in edit.description


def test_a_wrong_location_is_caught(pool):
    """The check has teeth: a deleted element labelled with a distant element's footprint is rejected."""
    def apart(a, b):  # two boxes more than 4 px apart on some axis
        return a[0] > b[2] + 4 or a[2] < b[0] - 4 or a[1] > b[3] + 4 or a[3] < b[1] - 4

    for seed, task in generated():
        perturbation = P.perturb(task, random.Random(seed), 1, names=["delete_element"])
        ctx = P.Context(task.spec)
        (edit,) = perturbation.edits
        deleted = next(el for el in ctx.candidates if ctx.name(el) == edit.location)
        far = [el for el in ctx.candidates if G.local(el.tag) != "g" and apart(ctx.box(el), ctx.box(deleted))]
        if far:
            break
    wrong = dataclasses.replace(edit, footprint=(task.code, S.to_svg(ctx.root, probe=far[0])))
    verdict = verify(pool, "svg", task.code, Perturbation(perturbation.code, (wrong,)))
    assert not verdict.kept and "is not at" in verdict.reason


def test_any_svg_source_is_edited_on_its_parsed_tree(pool):
    code = ('<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 48 48">'
            '<rect x="4" y="4" width="40" height="40" rx="6" fill="#1e88e5"/>'
            '<circle cx="24" cy="24" r="10" fill="#fdd835" stroke="#263238" stroke-width="2"/></svg>')
    task = Task("svg", code, "svg/handwritten", 0)
    perturbation = P.perturb(task, random.Random(4), 3)
    locations = {e.location for e in perturbation.edits}
    assert {"the large blue rounded rectangle in the centre", "the yellow circle in the centre"} <= locations
    assert S.parse_icon(perturbation.code, size=None).get("width") == "96"  # its own display size is kept
    verdict = verify(pool, "svg", code, perturbation)
    assert verdict.kept, verdict.reason
