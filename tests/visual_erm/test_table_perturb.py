"""Table error injection: every edit type's label survives the pixel check.

`verify` keeps an edit only if its rendered change touches the footprint (the
probe-painted cells) of the element its location names; each test also pins the
category and what the location must mention.
"""
import dataclasses
import random

import pytest

import render
from visual_erm.perturb import table as P
from visual_erm.perturb.base import NotApplicable, Perturbation
from visual_erm.perturb.verify import verify
from visual_erm.schema import CATEGORIES
from visual_erm.tasks import table as T
from visual_erm.tasks.base import Task

EXPECTED = {  # edit type -> (category, a word its location must contain)
    "change_number": ("numeric_error", "column"), "header_typo": ("text_error", "header '"),
    "swap_rows": ("layout_error", "rows "), "swap_columns": ("layout_error", "columns "),
    "merge_cells": ("layout_error", "columns "), "split_cell": ("layout_error", "'"),
    "change_alignment": ("layout_error", "column"), "drop_row": ("layout_error", "row "),
    "toggle_bold": ("text_error", "column"), "change_text": ("text_error", "column"),
}  # fmt: skip


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=30) as p:
        yield p


def first_fit(name: str, markdown: bool | None = None):
    """The first seeded task (optionally of one format) that edit type `name` applies to."""
    for seed in range(300):
        task = T.generate(random.Random(seed), seed)
        if markdown is not None and (task.source == "table/markdown") != markdown:
            continue
        try:
            return task, P.perturb(task, random.Random(seed), 1, names=[name])
        except NotApplicable:
            continue
    raise AssertionError(f"no seed fits {name}")


def test_registry_matches_the_table_categories():
    assert set(P.EDITS) == set(EXPECTED) == set(P.CATEGORY)
    assert set(P.CATEGORY.values()) == set(CATEGORIES["table"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_edit_type_is_labelled_right(pool, name):
    category, word = EXPECTED[name]
    task, perturbation = first_fit(name)
    (edit,) = perturbation.edits
    assert edit.name == name and edit.category == category and word in edit.location
    assert edit.single_code == perturbation.code != task.code
    assert edit.footprint[0] != edit.footprint[1] and "#ff00ff" in edit.footprint[1]
    verdict = verify(pool, "table", task.code, perturbation)
    assert verdict.kept, verdict.reason
    (label,) = verdict.discrepancies
    assert (label.category, label.location, label.description) == (category, edit.location, edit.description)


def test_markdown_tasks_stay_markdown_and_cannot_merge(pool):
    task, perturbation = first_fit("change_number", markdown=True)
    assert "<table" not in perturbation.code and perturbation.code.startswith("|")
    with pytest.raises(NotApplicable):
        P.perturb(task, random.Random(0), 1, names=["merge_cells", "split_cell"])
    assert verify(pool, "table", task.code, perturbation).kept


def test_descriptions_say_what_changed():
    task, perturbation = first_fit("change_number")
    (edit,) = perturbation.edits
    assert " instead of " in edit.description and "'" in edit.description
    task, perturbation = first_fit("swap_rows")
    assert "swapped" in perturbation.edits[0].description
    task, perturbation = first_fit("drop_row")
    assert perturbation.edits[0].description.endswith("is missing")


def test_number_change_keeps_the_format():
    model = T.TableModel([[T.Cell("Item"), T.Cell("Price")]],
                         [[T.Cell("Tea"), T.Cell.number(1240.0, "${:,.2f}")],
                          [T.Cell("Cake"), T.Cell.number(310.5, "${:,.2f}")]], ["left", "right"])
    task = Task("table", T.to_markdown(model), "table/markdown", 0, model)
    for seed in range(10):
        (edit,) = P.perturb(task, random.Random(seed), 1, names=["change_number"]).edits
        new = edit.description.split(" is ")[1].split(" instead")[0]
        assert new.startswith("$") and "." in new and new != "$1,240.00"


def test_zero_edits_render_identically(pool):
    task = T.generate(random.Random(3), 3)
    perturbation = P.perturb(task, random.Random(3), 0)
    assert perturbation == Perturbation(task.code, ())
    verdict = verify(pool, "table", task.code, perturbation)
    assert verdict.kept and verdict.discrepancies == ()


def test_multi_edit_pairs_verify_and_touch_different_elements(pool):
    for seed in (0, 2, 9):
        task = T.generate(random.Random(seed), seed)
        perturbation = P.perturb(task, random.Random(seed), 3)
        assert len(perturbation.edits) == 3 and len({e.name for e in perturbation.edits}) == 3
        assert len({e.location for e in perturbation.edits}) == 3
        verdict = verify(pool, "table", task.code, perturbation)
        assert verdict.kept, verdict.reason
        assert [d.category for d in verdict.discrepancies] == [e.category for e in perturbation.edits]


def test_a_wrong_location_is_caught(pool):
    """The check has teeth: the same edit labelled with another row's footprint is rejected."""
    for seed in range(300):  # a number change that keeps its width, so nothing else moves
        task = T.generate(random.Random(seed), seed)
        try:
            perturbation = P.perturb(task, random.Random(seed), 1, names=["change_number"])
        except NotApplicable:
            continue
        (edit,) = perturbation.edits
        new, old = edit.description.rsplit(" is ", 1)[1].split(" instead of ")
        if len(new) == len(old) and len(task.spec.body) >= 3:
            break
    model = task.spec
    number = int(edit.location.split(",")[0].split()[1])  # "row 3 ('Europe'), column 'Q1'"
    far_row = len(model.header) + (len(model.body) - 1 if number == 1 else 0)
    wrong = dataclasses.replace(edit, footprint=(T.to_html(model), T.to_html(model, probe=("row", far_row))))
    verdict = verify(pool, "table", task.code, Perturbation(perturbation.code, (wrong,)))
    assert not verdict.kept and "is not at" in verdict.reason


def test_too_many_edits_for_a_tiny_table():
    model = T.TableModel([[T.Cell("A"), T.Cell("B")]], [[T.Cell("x"), T.Cell("y")]], ["left", "left"])
    task = Task("table", T.to_markdown(model), "table/markdown", 0, model)
    with pytest.raises(NotApplicable):
        P.perturb(task, random.Random(0), 4)
    with pytest.raises(ValueError):
        P.perturb(task, random.Random(0), 5)
