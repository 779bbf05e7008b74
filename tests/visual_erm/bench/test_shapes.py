"""The shapes judge bench: its held-out set loads, and the oracle passes the measures a constant, empty or random
judge cannot."""
import json

import pytest

from visual_erm import bench, shapes_data
from visual_erm.bench import cli as bench_cli
from visual_erm.bench import shapes
from visual_erm.schema import Discrepancy


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shapes_bench"))
    items = bench.load_bench(shapes.build_bench(out, n=40), require_images=True).items
    ranking = bench.load_bench(shapes.build_ranking(out, n=8), require_images=True).items
    return items, ranking


def _measures(judge, items, ranking):
    outputs = bench_cli.JUDGES[judge](items)
    ranked = ({i.id: shapes.constant_critique(items) for i in ranking} if judge == "constant"
              else bench_cli.JUDGES[judge](ranking))
    return shapes.measures(items, outputs, ranking, ranked)


def test_bench_set_loads_and_the_oracle_scores_one(tmp_path):
    path = shapes.build_bench(str(tmp_path), n=12)
    loaded = bench.load_bench(path, require_images=True)
    assert len(loaded.items) == 12 and not loaded.errors
    with open(path) as f:
        ids = [json.loads(line)["id"] for line in f]
    assert all(int(i.split("-")[1]) >= shapes_data.HELD_OUT_SEED for i in ids)  # held-out seeds only
    result = bench.evaluate_items(loaded.items, {item.id: item.reference.to_dict() for item in loaded.items})
    assert result["overall"]["soft"]["f1"] == pytest.approx(1.0)


def test_edit_of_reads_the_generator_wording():
    words = {"moved up and left": "moved", "too large": "resized", "too small": "resized",
             "red instead of blue": "recolored", "a square instead of a circle": "reshaped", "missing": "missing",
             "an extra green circle": "extra", "looks odd": None}
    assert {text: shapes_data.edit_of(text) for text in words} == words


def test_the_oracle_passes(sets):
    values = _measures("oracle", *sets)
    assert values["passes"] == 1.0 and values["ranking_accuracy"] == 1.0 and values["f1/min"] == 1.0
    assert values["identical_no_errors"] == 1.0


@pytest.mark.parametrize("judge", ["constant", "none", "random"])
def test_a_judge_that_ignores_the_images_fails(sets, judge):
    values = _measures(judge, *sets)
    assert values["passes"] == 0.0
    assert values["ranking_accuracy"] <= 0.75  # ties (constant, empty) count half
    assert values["f1/min"] < 0.5


def test_ranking_needs_both_candidates(sets):
    _, ranking = sets
    with pytest.raises(ValueError):
        shapes.ranking_accuracy([i for i in ranking if i.id.endswith("-1")], {})


def test_an_unparsable_output_counts_as_no_detection(sets):
    items, _ = sets
    item = next(i for i in items if i.reference.errors)
    values = shapes.detection([item], {item.id: ""})
    assert all(v == 0.0 for k, v in values.items() if k.startswith("f1/"))
    assert shapes.edits_named(shapes.as_critique(
        {"errors": [Discrepancy("shape_error", 2, "the red circle", "moved up").to_dict()]}, "svg")) == {"moved"}
