"""Shapes-task held-out metrics: hand-computed cases, and a blank or constant policy cannot pass them."""
import io

import cairosvg
import pytest
from PIL import Image

from rl import shapes
from visual_erm.tasks.shapes import Shape, shape_code, svg_code


def _render(code: str) -> Image.Image:
    return Image.open(io.BytesIO(cairosvg.svg2png(bytestring=code.encode(), background_color="white"))).convert("RGB")


@pytest.fixture(scope="module")
def targets():
    codes = [shape_code(seed) for seed in range(1_000_000_000, 1_000_000_024)]
    return codes, [_render(c) for c in codes]


def test_parse_shape_reads_circles_and_squares():
    assert shapes.parse_shape('<svg><circle cx="10" cy="12" r="6" fill="Red"/></svg>') == \
        Shape("circle", "red", 8, 10, 12)
    assert shapes.parse_shape('<svg width="32"><rect x="4" y="6" width="8" height="8" fill="blue"/></svg>') == \
        Shape("square", "blue", 8, 8, 10)
    assert shapes.parse_shape('<svg><rect x="4" y="6" width="8" height="4" fill="blue"/></svg>').kind == \
        "rectangle"
    for bad in (None, "", "<svg>", "<svg><path d='M0 0'/></svg>", '<svg><circle cx="a" cy="1" r="2"/></svg>'):
        assert shapes.parse_shape(bad) is None


def test_attribute_hits_by_hand():
    target = Shape("circle", "red", 8, 10, 12)
    assert shapes.attribute_hits(Shape("circle", "red", 8, 12, 10), target)["acc_all"] == 1.0  # 2 px off
    hits = shapes.attribute_hits(Shape("square", "red", 6, 13, 12), target)
    assert hits == {"acc_kind": 0.0, "acc_color": 1.0, "acc_size": 0.0, "acc_position": 0.0, "acc_all": 0.0}
    assert shapes.attribute_hits(None, target)["acc_color"] == 0.0


def test_color_iou_by_hand():
    target = Image.new("RGB", (4, 4), "white")
    target.paste((255, 0, 0), (0, 0, 2, 2))  # 4 red pixels
    candidate = Image.new("RGB", (4, 4), "white")
    candidate.paste((250, 10, 10), (1, 0, 3, 2))  # 4 near-red pixels, 2 of them over the target's
    assert shapes.color_iou(candidate, target) == pytest.approx(2 / 6)
    candidate.paste((0, 0, 255), (1, 0, 3, 2))  # the same place in blue: no overlap of colour
    assert shapes.color_iou(candidate, target) == 0.0
    assert shapes.color_iou(None, target) == 0.0
    assert shapes.color_iou(target, target) == 1.0


def test_the_reference_answers_score_perfectly_and_depend_on_the_image(targets):
    codes, images = targets
    scores = shapes.shape_scores(codes, images, codes, images)
    assert scores["iou"] == 1.0 and scores["acc_all"] == 1.0 and scores["render_rate"] == 1.0
    assert scores["blank_rate"] == 0.0
    assert scores["distinct"] == len(codes)
    assert scores["iou_shuffled"] < 0.2 and scores["acc_all_shuffled"] < 0.2


def test_blank_and_constant_policies_cannot_pass(targets):
    codes, images = targets
    n = len(codes)
    base = shapes.baselines(codes, images)
    blank = shapes.shape_scores([None] * n, [None] * n, codes, images)
    assert blank["iou"] == base["blank/iou"] == 0.0 and blank["acc_all"] == 0.0 and blank["render_rate"] == 0.0
    assert blank["blank_rate"] == 1.0
    for i in range(n):  # every constant answer: no better than the best constant, no image dependence
        constant = shapes.shape_scores([codes[i]] * n, [images[i]] * n, codes, images)
        assert constant["distinct"] == 1.0
        for name in shapes.SHAPE_METRICS:
            assert constant[name] <= base[f"constant/{name}"] + 1e-9
    assert base["constant/iou"] < 0.3 and base["constant/acc_all"] <= 2 / n


def test_a_shape_off_by_one_attribute_loses_that_attribute(targets):
    codes, images = targets
    moved = [svg_code([Shape(s.kind, s.color, s.size, s.x + 6 if s.x < 16 else s.x - 6, s.y)])
             for s in map(shapes.parse_shape, codes)]
    scores = shapes.shape_scores(moved, [_render(c) for c in moved], codes, images)
    assert scores["acc_position"] == 0.0 and scores["acc_color"] == scores["acc_kind"] == scores["acc_size"] == 1.0
    assert 0.0 < scores["iou"] < 1.0


def test_mismatched_lengths_are_refused(targets):
    codes, images = targets
    with pytest.raises(ValueError):
        shapes.shape_scores(codes[:2], images[:3], codes[:2], images[:2])
