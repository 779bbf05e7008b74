"""Reward data for the toy single-shape task: labels are exact and checked in pixels."""
import random

import numpy as np
import pytest

import render
from rl.shapes import ShapeSource
from visual_erm import shapes_data
from visual_erm.schema import CATEGORIES, parse_critique
from visual_erm.tasks.shapes import Shape, shape_code, shape_spec, svg_code


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2) as p:
        yield p


def test_the_judge_data_uses_the_policy_task_references():
    source = ShapeSource(start=0, stop=5)
    for seed in range(5):
        assert source._reference(seed).code == shape_code(seed) == svg_code([shape_spec(seed)])


@pytest.mark.parametrize("name,category,words", [
    ("moved", "shape_error", "moved"), ("resized", "shape_error", "too"),
    ("recolored", "style_error", "instead of red"), ("reshaped", "shape_error", "a square instead of a circle")])
def test_each_shape_edit_changes_what_its_label_says(name, category, words):
    shape = Shape("circle", "red", 8, 16, 16)
    edited, got_category, description = shapes_data._edit_shape(name, shape, random.Random(0), 32)
    assert got_category == category and words in description
    changed = {f for f in ("kind", "color", "size", "x", "y") if getattr(edited, f) != getattr(shape, f)}
    allowed = {"moved": {"x", "y"}, "resized": {"size"}, "recolored": {"color"}, "reshaped": {"kind"}}[name]
    assert changed and changed <= allowed
    assert shapes_data._inside(edited, 32)


def test_moves_are_named_by_direction():
    assert shapes_data._direction(4, 0) == "right"
    assert shapes_data._direction(-4, -6) == "up and left"
    assert shapes_data._direction(0, 8) == "down"


def test_pairs_are_pixel_verified_and_cover_every_edit(pool):
    examples = []
    for seed in range(48):
        example, stats = shapes_data.make_shape_pair(pool, seed)
        assert stats["rejected_edits"] <= stats["candidate_edits"]
        if example is not None:
            examples.append(example)
    assert len(examples) >= 40  # the pixel check rejects few shape edits
    seen = {name for e in examples for name in e.edits}
    assert seen == {"moved", "resized", "recolored", "reshaped", "missing", "extra"}
    for example in examples:
        critique = parse_critique(example.critique, "svg")
        assert critique.valid and len(critique.errors) == len(example.edits)
        assert all(e.category in CATEGORIES["svg"] for e in critique.errors)
        reference, candidate = (np.asarray(im, np.int16) for im in example.images())
        differs = (np.abs(reference - candidate) > 24).any()
        assert differs == bool(example.edits), example.id  # zero-edit pairs render identically
        if "missing" in example.edits:
            assert (candidate > 230).all()  # nothing drawn
