"""Shapes judge measures: the oracle passes them, a constant, empty or random judge cannot."""
import pytest

from visual_erm import bench_cli, bench_data, bench_shapes, shapes_data
from visual_erm.schema import Discrepancy


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shapes_bench"))
    bench = bench_data.load_bench(shapes_data.build_bench(out, n=40), require_images=True).items
    ranking = bench_data.load_bench(shapes_data.build_ranking(out, n=8), require_images=True).items
    return bench, ranking


def _measures(judge, bench, ranking):
    outputs = bench_cli.JUDGES[judge](bench)
    ranked = ({i.id: bench_shapes.constant_critique(bench) for i in ranking} if judge == "constant"
              else bench_cli.JUDGES[judge](ranking))
    return bench_shapes.measures(bench, outputs, ranking, ranked)


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
        bench_shapes.ranking_accuracy([i for i in ranking if i.id.endswith("-1")], {})


def test_an_unparsable_output_counts_as_no_detection(sets):
    bench, _ = sets
    item = next(i for i in bench if i.reference.errors)
    values = bench_shapes.detection([item], {item.id: ""})
    assert all(v == 0.0 for k, v in values.items() if k.startswith("f1/"))
    assert bench_shapes.edits_named(bench_shapes.as_critique(
        {"errors": [Discrepancy("shape_error", 2, "the red circle", "moved up").to_dict()]}, "svg")) == {"moved"}
