"""Chart error injection: every edit type's label survives the pixel check.

`verify` keeps an edit only if its rendered change touches the footprint of the
element its location names; each test also pins the category and what the
location must mention. The ast path is exercised on a hand-written script.
"""
import ast
import random

import pytest

import render
from visual_erm.perturb import chart as P
from visual_erm.perturb.base import NotApplicable, Perturbation
from visual_erm.perturb.verify import verify
from visual_erm.schema import CATEGORIES
from visual_erm.tasks import chart as C
from visual_erm.tasks.base import Task

EXPECTED = {  # edit type -> (category, a word its location must contain)
    "change_data_value": ("data_error", "'"), "drop_series": ("structure_error", "'"),
    "add_series": ("structure_error", "'"), "swap_series_colors": ("style_error", " and "),
    "recolor_series": ("style_error", ""), "change_chart_type": ("structure_error", ""),
    "change_title_text": ("text_error", "title"), "change_axis_label": ("text_error", "-axis label"),
    "change_legend_label": ("text_error", "legend entry"), "typo_tick_label": ("text_error", "label"),
    "change_scale": ("structure_error", "-axis scale"), "change_axis_limits": ("structure_error", "-axis range"),
    "move_legend": ("structure_error", "legend"), "remove_legend": ("structure_error", "legend"),
    "add_grid": ("style_error", "grid"), "remove_grid": ("style_error", "grid"),
    "change_marker_style": ("style_error", "'"), "change_orientation": ("structure_error", ""),
    "change_annotation_text": ("text_error", "annotation"),
}  # fmt: skip
HANDWRITTEN = '''
import matplotlib.pyplot as plt
import numpy as np

# a report script written by hand, not by our printer
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
sales = [120, 135, 150, 145, 170, 190]
costs = np.array([80, 90, 95, 100, 110, 115])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.plot(months, sales, marker="o", color="tab:blue", label="Sales")
ax1.plot(months, costs, "--", color="tab:red", label="Costs")
ax1.set_title("Sales and costs, H1 2024")
ax1.set_ylabel("Thousand USD")
ax1.legend(loc="upper left")

bars = ax2.bar(["North", "South", "East", "West"], [42.5, 30.1, 55.0, 38.7], color="seagreen")
ax2.set_title("Revenue by region")
ax2.set_xlabel("Region")
for rect in bars:
    ax2.text(rect.get_x() + rect.get_width() / 2, rect.get_height(), f"{rect.get_height():.1f}",
             ha="center", va="bottom")
plt.tight_layout()
plt.savefig("report.png")
'''


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=30) as p:
        yield p


def applicable(name, generators=None, seeds=40):
    """The first (task, plan) where edit `name` applies, searching generators and seeds in order."""
    for seed in range(seeds):
        for gen in generators or sorted(C.GENERATORS):
            task = C.GENERATORS[gen](random.Random(seed), seed)
            try:
                return task, P.EDITS[name](task.spec, random.Random(seed))
            except NotApplicable:
                continue
    raise AssertionError(f"{name} never applies")


def check_single(pool, reference, edit):
    verdict = verify(pool, "chart", reference, Perturbation(edit.single_code, (edit,)))
    assert verdict.kept, f"{edit.name} at {edit.location!r}: {verdict.reason}"
    (label,) = verdict.discrepancies
    assert (label.category, label.location, label.description) == (edit.category, edit.location, edit.description)
    return label


def test_every_edit_type_has_an_expected_category():
    assert set(P.EDITS) == set(EXPECTED)
    assert {category for category, _ in EXPECTED.values()} == set(CATEGORIES["chart"])
    assert all(P.CATEGORY[name] == category for name, (category, _) in EXPECTED.items())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_edit_is_kept_at_its_location(pool, name):
    task, plan = applicable(name)
    category, word = EXPECTED[name]
    assert plan.edit.name == name and plan.edit.category == category
    assert word in plan.edit.location and plan.edit.description
    assert plan.edit.single_code != task.code
    check_single(pool, task.code, plan.edit)


@pytest.mark.parametrize("generator",
                         ["grouped_bar", "line", "scatter", "pie", "heatmap", "box", "stacked_area", "barh"])
def test_data_value_label_is_right_for_each_chart_type(pool, generator):
    task, plan = applicable("change_data_value", [generator])
    noun = {"grouped_bar": "bar", "line": "point", "scatter": "point", "pie": "wedge", "heatmap": "cell",
            "box": "box", "stacked_area": "area", "barh": "bar"}[generator]  # fmt: skip
    assert plan.edit.location.startswith(noun)
    check_single(pool, task.code, plan.edit)


def test_edits_that_add_an_element_find_it_in_the_edited_chart(pool):
    task, plan = applicable("add_series", ["line"])
    assert plan.edit.footprint[0] == plan.edit.single_code  # the new line exists only there
    check_single(pool, task.code, plan.edit)


def test_spec_edit_in_a_subplot_names_the_subplot(pool):
    task, plan = applicable("change_title_text", ["subplots"])
    assert "subplot" in plan.edit.location or plan.edit.location == "figure title"
    check_single(pool, task.code, plan.edit)


def test_zero_edit_perturbation_renders_identically(pool):
    for seed in (1, 2):
        task = C.generate(random.Random(seed), seed)
        perturbation = P.perturb(task, random.Random(seed), 0)
        assert perturbation.code == task.code and perturbation.edits == ()
        verdict = verify(pool, "chart", task.code, perturbation)
        assert verdict.kept and verdict.discrepancies == ()


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_multi_edit_perturbations_verify(pool, seed):
    task = C.generate(random.Random(seed), seed)
    perturbation = P.perturb(task, random.Random(seed), 4)
    assert len(perturbation.edits) >= 2
    assert len({e.name for e in perturbation.edits}) == len(perturbation.edits)
    verdict = verify(pool, "chart", task.code, perturbation)
    assert verdict.kept, verdict.reason
    assert [d.category for d in verdict.discrepancies] == [e.category for e in perturbation.edits]


def test_multi_edit_plans_claim_disjoint_elements_and_compose():
    wide = 0
    for seed in range(120):
        rng = random.Random(seed)
        task = C.generate(rng, seed)
        plans = P.choose_plans(P.EDITS, task.spec, rng, 4)
        assert len(plans) <= 4 and len({p.edit.name for p in plans}) == len(plans)
        for k, plan in enumerate(plans):
            assert not any(P.conflict(plan.claims, other.claims) for other in plans[k + 1 :])
            wide += any(c.endswith("/*") for c in plan.claims)
        spec = task.spec
        for plan in plans:
            spec = plan.apply(spec)
        compile(C.print_code(spec), "<perturbed>", "exec")
    assert wide  # panel-wide edits (chart type, orientation) do get drawn
    assert P.conflict(frozenset({"0/*"}), frozenset({"0/title"}))
    assert not P.conflict(frozenset({"0/*"}), frozenset({"1/title"}))


def test_not_applicable_when_the_spec_lacks_the_element():
    task, _ = applicable("change_data_value", ["pie"])
    for name in ("move_legend", "remove_legend", "add_grid", "change_scale", "change_orientation"):
        with pytest.raises(NotApplicable):
            P.EDITS[name](task.spec, random.Random(0))


@pytest.mark.parametrize("name", sorted(P.AST_EDITS))
def test_ast_edit_on_a_handwritten_script_is_kept(pool, name):
    plan = P.AST_EDITS[name](HANDWRITTEN, random.Random(1))
    assert plan.edit.category == P.CATEGORY[name]
    assert plan.edit.footprint[0] == HANDWRITTEN
    ast.parse(plan.edit.single_code)
    check_single(pool, HANDWRITTEN, plan.edit)


def test_ast_data_value_names_the_bar_and_the_line_point(pool):
    locations = set()
    for seed in range(12):
        plan = P.AST_EDITS["change_data_value"](HANDWRITTEN, random.Random(seed))
        locations.add(plan.edit.location.split(" ")[0])
        if seed < 2:
            check_single(pool, HANDWRITTEN, plan.edit)
    assert locations == {"bar", "point"}
    plan = P.AST_EDITS["change_data_value"](HANDWRITTEN, random.Random(0))
    assert "subplot titled" in plan.edit.location


def test_ast_scale_can_add_a_log_scale_where_the_script_has_none(pool):
    plan = P.AST_EDITS["change_scale"](HANDWRITTEN, random.Random(0))
    assert "scale(" not in HANDWRITTEN and "scale('log')" in plan.edit.single_code
    check_single(pool, HANDWRITTEN, plan.edit)
    flipped = plan.edit.single_code
    back = P.AST_EDITS["change_scale"](flipped, random.Random(0))
    assert back.edit.description.endswith("uses a linear scale instead of a logarithmic one")
    check_single(pool, flipped, back.edit)


def test_tasks_without_a_spec_take_the_ast_path(pool):
    task = Task(kind="chart", code=HANDWRITTEN, source="dataset/report", seed=0)
    perturbation = P.perturb(task, random.Random(4), 3)
    assert len(perturbation.edits) == 3 and all(e.name in P.AST_EDITS for e in perturbation.edits)
    verdict = verify(pool, "chart", HANDWRITTEN, perturbation)
    assert verdict.kept, verdict.reason
    assert P.perturb(task, random.Random(4), 0).code == HANDWRITTEN


def test_ast_path_also_works_on_printed_code(pool):
    task = applicable("change_data_value", ["bar"])[0]
    perturbation = P.perturb_code(task.code, random.Random(2), 2)
    assert perturbation.edits
    verdict = verify(pool, "chart", task.code, perturbation)
    assert verdict.kept, verdict.reason
