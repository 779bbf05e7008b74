"""VC-RewardBench scorer: hand-computed metrics, determinism, oracle / silent judges, matching, and
item-named errors for malformed benchmark files."""
import json
import math
import pickle
import random
from dataclasses import astuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visual_erm.bench import (
    BenchItemError,
    evaluate,
    evaluate_items,
    judge_keys,
    judge_predictions,
    load_bench,
    load_items,
    pearson,
)
from visual_erm.matching import LLMMatcher, MatchConfig, match_errors, similarity, tokens
from visual_erm.schema import Critique
from visual_erm.schema import Discrepancy as D

# ---------------------------------------------------------------- the worked example
# Item A (chart)
R1 = D("data_error", 3, "bar 2021", "height 45 should be 54")
R2 = D("text_error", 1, "", "title reads revenue")  # tokens {title, reads, revenue}
R3 = D("style_error", 2, "legend", "colors swapped")
P1 = D("data_error", 3, "bar 2021", "height 45 should be 54")  # identical to R1: sim 1 -> yes
P2 = D("text_error", 2, "", "title font wrong")  # {title, font, wrong}: F1 = 2*1/(3+3) = 1/3 -> partial
P3 = D("structure_error", 1, "x axis", "ticks missing")  # no structure_error reference -> FP
# Item B (table)
R4 = D("numeric_error", 2, "", "total is 1,000 but should be 1000.5")  # {total, 1000, 1000.5}
R6 = D("text_error", 1, "", "header misspelled")  # unmatched -> FN
P4 = D("numeric_error", 2, "", "Total shows 1000")  # {total, 1000}: F1 = 2*2/(3+2) = 0.8 -> yes
P5 = D("layout_error", 1, "", "extra empty row")  # FP
# Item C (svg): nothing on either side.  Item D (svg): one missed reference.
R5 = D("shape_error", 3, "", "circle missing")

PREDS = [Critique((P1, P2, P3)), Critique((P4, P5)), Critique(), Critique()]
REFS = [Critique((R1, R2, R3)), Critique((R4, R6)), Critique(), Critique((R5,))]
KINDS = ["chart", "table", "svg", "svg"]


def test_similarities_of_the_worked_example():
    assert tokens(R4.description) == {"total", "1000", "1000.5"}  # "1,000" -> "1000", stop words gone
    assert similarity(P2, R2) == pytest.approx(1 / 3)
    assert similarity(P4, R4) == pytest.approx(0.8)
    # With locations on both sides: 0.4 * F1(location) + 0.6 * F1(description).
    a = D("data_error", 1, "bar 2021", "height wrong")
    b = D("data_error", 1, "bar 2022", "height wrong")  # location {bar, 2021} vs {bar, 2022}: F1 1/2
    assert similarity(a, b) == pytest.approx(0.4 * 0.5 + 0.6 * 1.0)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_similarity_is_bounded_and_symmetric(loc_a, desc_a, loc_b, desc_b):
    a, b = D("text_error", 1, loc_a, desc_a), D("text_error", 1, loc_b, desc_b)
    assert 0.0 <= similarity(a, b) == similarity(b, a) <= 1.0
    assert similarity(a, a) == 1.0


def test_number_normalisation():
    assert tokens("1,000.50 007 3.0 12,3456") == {"1000.5", "7", "3", "12", "3456"}
    assert tokens("Y-Axis label") == {"y", "axis", "label"}


def test_hand_computed_metrics():
    res = evaluate(PREDS, REFS, kind=KINDS, mode="per_error")
    o = res["overall"]
    # 5 predicted, 6 reference errors; matches: P1-R1 yes, P4-R4 yes, P2-R2 partial.
    assert (o["n_pred"], o["n_ref"], o["yes"], o["partial"]) == (5, 6, 2, 1)
    # hard: P = 2/5, R = 2/6, F1 = 2PR/(P+R) = (4/15)/(11/15) = 4/11
    assert o["hard"] == pytest.approx({"precision": 0.4, "recall": 1 / 3, "f1": 4 / 11})
    # soft: TP = 2 + 0.5 = 2.5; P = 2.5/5 = 1/2, R = 2.5/6 = 5/12, F1 = (5/12)/(11/12) = 5/11
    assert o["soft"] == pytest.approx({"precision": 0.5, "recall": 5 / 12, "f1": 5 / 11})
    # Per kind. chart: 3 vs 3, 1 yes + 1 partial; table: 2 vs 2, 1 yes; svg: 0 predicted vs 1.
    k = res["by_kind"]
    assert k["chart"]["hard"]["f1"] == pytest.approx(1 / 3)
    assert k["chart"]["soft"]["f1"] == pytest.approx(0.5)
    assert k["table"]["hard"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert k["svg"]["hard"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # Per category. text_error: 1 predicted (P2), 2 references (R2, R6), 1 partial:
    # hard all 0; soft P = 0.5/1, R = 0.5/2, F1 = 2(.5)(.25)/(.75) = 1/3.
    c = res["by_category"]
    assert c["text_error"]["hard"]["f1"] == 0.0
    assert c["text_error"]["soft"] == pytest.approx({"precision": 0.5, "recall": 0.25, "f1": 1 / 3})
    assert c["data_error"]["hard"]["f1"] == 1.0 and c["numeric_error"]["hard"]["f1"] == 1.0
    for cat in ("structure_error", "layout_error", "style_error", "shape_error"):
        assert c[cat]["soft"]["f1"] == 0.0
    # Severity sums per item: predicted x = [6, 3, 0, 0], reference y = [6, 3, 0, 3].
    # mean x = 2.25, mean y = 3; dx = [3.75, .75, -2.25, -2.25], dy = [3, 0, -3, 0]
    # sum dx*dy = 11.25 + 6.75 = 18; sum dx^2 = 24.75; sum dy^2 = 18
    # r = 18 / sqrt(24.75 * 18) = sqrt(324 / 445.5) = sqrt(8/11) = 0.8528
    assert res["severity_pearson"] == pytest.approx(math.sqrt(8 / 11))
    assert res["n_items"] == 4 and res["n_invalid_predictions"] == 0
    # chart has one item, svg has constant sums: correlation undefined there, with notes.
    assert math.isnan(k["chart"]["severity_pearson"]) and math.isnan(k["svg"]["severity_pearson"])
    assert any(n.startswith("chart:") for n in res["notes"])
    assert any(n.startswith("svg:") for n in res["notes"])


def test_design_signature_and_input_forms():
    # DESIGN.md: visual_erm.bench.evaluate(predictions, references) -> dict; per_error needs no kind.
    res = evaluate([list(p.errors) for p in PREDS], [r.to_json() for r in REFS], mode="per_error")
    assert res["overall"]["hard"]["f1"] == pytest.approx(4 / 11)
    assert res["by_kind"] == {}
    with pytest.raises(ValueError):
        evaluate(PREDS, REFS[:2], mode="per_error")
    with pytest.raises(ValueError):
        evaluate(PREDS, ["not a critique"] * 4, mode="per_error")  # references must be valid


@pytest.mark.parametrize("seed", range(5))
def test_shuffling_errors_keeps_metrics_exactly(seed):
    rng = random.Random(seed)

    def shuffled(c):
        errors = list(c.errors)
        rng.shuffle(errors)
        return Critique(tuple(errors))

    base = evaluate(PREDS, REFS, kind=KINDS, mode="per_error")
    res = evaluate([shuffled(p) for p in PREDS], [shuffled(r) for r in REFS], kind=KINDS, mode="per_error")
    assert json.dumps(res, sort_keys=True) == json.dumps(base, sort_keys=True)
    # Item order changes nothing but the float summation order of the correlation.
    order = [2, 0, 3, 1]
    res = evaluate([PREDS[i] for i in order], [REFS[i] for i in order], kind=[KINDS[i] for i in order],
                   mode="per_error")
    assert res["overall"] == base["overall"] and res["by_category"] == base["by_category"]
    assert res["severity_pearson"] == pytest.approx(base["severity_pearson"])


WORDS = st.sampled_from(["bar", "title", "red", "blue", "1,000", "1000", "axis", "legend"])
ERRORS = st.builds(
    D,
    category=st.sampled_from(["text_error", "data_error"]),
    severity=st.integers(1, 3),
    location=st.lists(WORDS, max_size=2).map(" ".join),
    description=st.lists(WORDS, max_size=3).map(" ".join),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(ERRORS, max_size=6), st.lists(ERRORS, max_size=6), st.randoms(use_true_random=False))
def test_matching_is_order_independent_with_many_ties(preds, refs, rnd):
    def key(ms, ps, rs):
        return sorted((astuple(ps[m.pred_idx]), astuple(rs[m.ref_idx]), m.level) for m in ms)

    matches, _ = match_errors(preds, refs)
    p2, r2 = preds[:], refs[:]
    rnd.shuffle(p2)
    rnd.shuffle(r2)
    matches2, _ = match_errors(p2, r2)
    assert key(matches, preds, refs) == key(matches2, p2, r2)
    assert len({m.pred_idx for m in matches}) == len(matches) == len({m.ref_idx for m in matches})


def test_oracle_scores_one():
    res = evaluate(REFS, REFS, kind=KINDS, mode="per_error")
    for block in [res["overall"], *res["by_kind"].values(), *res["by_category"].values()]:
        assert block["hard"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
        assert block["soft"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert res["severity_pearson"] == pytest.approx(1.0)


def test_silent_judge_scores_zero_recall_and_nan_correlation():
    res = evaluate([Critique()] * 4, REFS, kind=KINDS, mode="per_error")
    assert res["overall"]["hard"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert res["overall"]["soft"]["recall"] == 0.0
    assert math.isnan(res["severity_pearson"])
    assert any("predicted severity sums are constant" in n for n in res["notes"])
    res = evaluate([Critique.invalid("x")] * 4, REFS, mode="per_error")
    assert res["n_invalid_predictions"] == 4 and res["overall"]["soft"]["recall"] == 0.0


def test_pearson_guards():
    assert pearson([1, 2, 3], [2, 4, 7])[1] is None
    assert math.isnan(pearson([1], [1])[0])
    assert math.isnan(pearson([1, 1], [1, 2])[0])


def test_assignment_is_optimal_not_greedy():
    refs = [
        D("text_error", 1, "", "alpha beta gamma delta"),
        D("text_error", 1, "", "alpha beta epsilon zeta"),
    ]
    # p1: F1 6/7 with r1, 4/7 with r2; p2: 4/7 with r1, 0 with r2. Greedy p1-r1 leaves p2 unmatched;
    # the optimum pairs p1-r2 and p2-r1: two "yes".
    preds = [D("text_error", 1, "", "alpha beta gamma"), D("text_error", 1, "", "gamma delta omega")]
    matches, _ = match_errors(preds, refs, "chart")
    assert [(m.pred_idx, m.ref_idx, m.level) for m in matches] == [(1, 0, "yes"), (0, 1, "yes")]


def test_category_constraint_modes():
    pred = [D("text_error", 2, "title", "title reads revenue")]
    ref = [D("data_error", 2, "title", "title reads revenue")]
    assert evaluate([pred], [ref], mode="per_error")["overall"]["hard"]["f1"] == 0.0
    res = evaluate([pred], [ref], config=MatchConfig(category="ignored"), mode="per_error")
    assert res["overall"]["hard"]["f1"] == 1.0
    # Precision is credited to the predicted category, recall to the reference category.
    assert res["by_category"]["text_error"]["hard"]["precision"] == 1.0
    assert res["by_category"]["data_error"]["hard"]["recall"] == 1.0
    with pytest.raises(ValueError):
        MatchConfig(category="soft")
    with pytest.raises(ValueError):
        MatchConfig(yes_threshold=0.2, partial_threshold=0.3)


def test_plugin_matcher_is_validated_and_failures_are_contained():
    calls = []

    def llm_matcher(preds, refs, kind):
        calls.append(kind)
        return [(0, 0, "partial"), (0, 1, "yes"), (5, 0, "yes"), (1, 1, "maybe"), "junk", (1, 1, "no")]

    preds = [D("text_error", 1, "", "a"), D("text_error", 1, "", "b")]
    refs = [D("text_error", 1, "", "c"), D("text_error", 1, "", "d")]
    res = evaluate([preds], [refs], kind="table", config=MatchConfig(matcher=llm_matcher), mode="per_error")
    assert calls == ["table"]
    assert (res["overall"]["yes"], res["overall"]["partial"]) == (0, 1)
    assert res["overall"]["soft"]["precision"] == pytest.approx(0.25)  # 0.5 TP / 2 predicted
    assert len([n for n in res["notes"] if n.startswith("item 0: matcher entry")]) == 4

    def broken(preds, refs, kind):
        raise TimeoutError("LLM timed out")

    res = evaluate([preds, preds], [refs, refs], config=MatchConfig(matcher=broken), ids=["a", "b"], mode="per_error")
    assert res["overall"]["hard"]["recall"] == 0.0
    assert res["notes"][:2] == ["item a: matcher failed: TimeoutError: LLM timed out",
                                "item b: matcher failed: TimeoutError: LLM timed out"]  # fmt: skip


# ---------------------------------------------------------------- loading benchmark files


def _err(description, severity=2):
    return {"category": "data_error", "severity": severity, "location": "bar", "description": description}


def _item(i, kind="chart", **kw):
    base = {
        "id": f"it{i}", "idx": i, "category": kind, "gt_img_path": f"gt{i}.png", "pred_img_path": f"pr{i}.png",
        "human_errors": [_err("too tall")],
        "pred_json": {"errors": [_err("bar too tall")]},
    }  # fmt: skip
    base.update(kw)
    return base


def _write_jsonl(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_malformed_jsonl_gives_item_named_errors(tmp_path):
    f = _write_jsonl(
        tmp_path / "bench.jsonl",
        [
            _item(0),
            '{"id": "broken", "category": ',  # broken JSON line
            {"idx": 7, "category": "chart", "human_errors": []},  # no id
            _item(2, kind="video"),  # bad kind
            _item(3, human_errors="none"),  # human_errors not a list
            _item(4, kind="table", human_errors=[{"type": "data_error", "severity": 1}]),  # chart type
            _item(0),  # duplicate id
            "[1, 2]",  # not an object
            "",
            _item(5, kind="table", human_errors=[{"type": "Numeric Error", "description": "12 vs 21"}]),
            _item(6, gt_img_path="a" * 5000 + ".png"),  # OSError: file name too long
        ],
    )
    data = load_bench(f)
    assert [it.id for it in data.items] == ["it0", "it5"]
    messages = [str(e) for e in data.errors]
    assert len(messages) == 8
    assert f"{f}:2" in messages[0] and "invalid JSON line" in messages[0]
    assert messages[1].startswith("item 'idx=7'") and "missing" in messages[1]
    assert messages[2].startswith("item 'it2'") and "'category'" in messages[2]
    assert messages[3].startswith("item 'it3'") and "human_errors" in messages[3]
    assert messages[4].startswith("item 'it4'") and "not a table category" in messages[4]
    assert messages[5].startswith("item 'it0'") and "duplicate" in messages[5]
    assert "expected an object" in messages[6]
    assert messages[7].startswith("item 'it6'") and "not a usable path" in messages[7]
    assert pickle.loads(pickle.dumps(data.errors[7])).item_id == "it6"
    # Tables write "type"; a missing severity defaults to 1 and marks the item.
    t = data.items[1]
    assert t.reference.errors == (D("numeric_error", 1, "", "12 vs 21"),) and not t.severity_known
    assert data.items[0].severity_known and data.items[0].idx == 0
    with pytest.raises(BenchItemError) as exc:
        load_bench(f, strict=True)
    assert exc.value.source == f"{f}:2"


def test_json_list_directory_and_images(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([_item(0), _item(1, kind="svg", human_errors=[])]))
    (tmp_path / "b.json").write_text("{not json")
    (tmp_path / "gt0.png").write_bytes(b"png")
    (tmp_path / "pr0.png").write_bytes(b"png")
    data = load_bench(tmp_path)
    assert [it.id for it in data.items] == ["it0", "it1"]
    assert len(data.errors) == 1 and "invalid JSON file" in str(data.errors[0])
    assert data.items[0].gt_img_path == str(tmp_path / "gt0.png")
    data = load_bench(tmp_path / "a.json", require_images=True)
    assert [it.id for it in data.items] == ["it0"]
    assert str(data.errors[0]).startswith("item 'it1'") and "image file not found" in str(data.errors[0])
    assert [it.id for it in load_items(tmp_path / "a.json")] == ["it0", "it1"]
    with pytest.raises(FileNotFoundError):
        load_bench(tmp_path / "missing.jsonl")


def test_cached_judges_and_evaluate_items(tmp_path):
    raw = "<think>hmm</think>```json\n" + json.dumps({"errors": [_err("too tall", 3)]}) + "\n```"
    f = _write_jsonl(
        tmp_path / "b.jsonl",
        [
            _item(0, pred_json_raw=raw),
            _item(1, pred_json_raw="I think the images are identical."),  # non-JSON prediction
            _item(2),  # no pred_json_raw at all
        ],
    )
    items = load_items(f)
    assert judge_keys(items) == ["pred_json", "pred_json_raw"]
    preds, errors = judge_predictions(items, "pred_json_raw")
    assert sorted(preds) == ["it0", "it1"] and not preds["it1"].valid
    assert [e.item_id for e in errors] == ["it1", "it2"]
    res = evaluate_items(items, "pred_json_raw", mode="per_error")
    # it0 matched (yes: same category, location, description); it1 invalid, it2 missing: 1/3 recall.
    assert res["overall"]["hard"] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5})
    assert res["n_invalid_predictions"] == 2
    assert [e.split(" (")[0] for e in res["item_errors"]] == ["item 'it1'", "item 'it2'"]
    # The cached "pred_json" judge, and a mapping with a missing id.
    assert evaluate_items(items, "pred_json", mode="per_error")["overall"]["hard"]["f1"] == 1.0
    res = evaluate_items(items, {"it0": items[0].reference, "it1": "[]"}, mode="per_error")
    assert res["overall"]["hard"]["recall"] == pytest.approx(1 / 3)
    assert len(res["item_errors"]) == 1 and "it2" in res["item_errors"][0]


# ---------------------------------------------------------------- official scoring (InternLM/Visual-ERM evaluation.py)


def tag_matcher(preds, refs, kind):
    """Scripted levels: same description -> yes; a description ending in "~" -> partial of its stem."""
    out = []
    for i, p in enumerate(preds):
        for j, r in enumerate(refs):
            if p.description == r.description:
                out.append((i, j, "yes"))
            elif p.description == r.description + "~":
                out.append((i, j, "partial"))
    return out


def test_official_yes_plus_partial_example_from_the_issue():
    # 2 predicted, 2 reference errors, one "yes" and one "partial" match.
    refs = [{"type": "data_error", "severity": 2, "description": "bar 3 too short"},
            {"type": "text_error", "severity": 1, "description": "title misspelled"}]
    preds = {"errors": [{"category": "data_error", "severity": 2, "description": "bar 3 too short"},
                        {"category": "text_error", "severity": 1, "description": "title misspelled~"}]}
    res = evaluate([preds], [refs], kind="chart", config=MatchConfig(matcher=tag_matcher))
    o = res["overall"]
    # hard TP = 1, soft TP = 1 + 0.5 = 1.5; FP = unmatched predictions = 0; FN = unmatched references = 0.
    assert (o["tp_hard"], o["tp_soft"], o["fp"], o["fn"]) == (1, 1.5, 0, 0)
    # hard: P = 1/(1+0) = 1, R = 1/(1+0) = 1, F1 = 1.  soft: P = 1.5/1.5 = 1, R = 1, F1 = 1.
    assert o["hard"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert o["soft"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    # per_error divides by the error counts: hard 1/2, soft (1 + 0.5)/2 = 0.75.
    per_error = evaluate([preds], [refs], kind="chart", config=MatchConfig(matcher=tag_matcher), mode="per_error")
    assert per_error["overall"]["hard"]["f1"] == 0.5 and per_error["overall"]["soft"]["f1"] == 0.75
    # The same levels from the deterministic matcher (similarities 1 and 1/3, see above).
    res = evaluate([Critique((P1, P2))], [Critique((R1, R2))], kind="chart")
    assert res["overall"]["hard"]["f1"] == 1.0 and res["overall"]["soft"]["f1"] == 1.0


def test_official_worked_example_per_kind_and_type():
    res = evaluate(PREDS, REFS, kind=KINDS)
    o = res["overall"]
    # A: P1-R1 yes, P2-R2 partial, P3 unmatched (FP), R3 unmatched (FN).  B: P4-R4 yes, P5 FP, R6 FN.
    # C: nothing.  D: R5 FN.  TP hard 2, soft 2.5, FP 2, FN 3.
    assert (o["tp_hard"], o["tp_soft"], o["fp"], o["fn"]) == (2, 2.5, 2, 3)
    # hard: P = 2/4, R = 2/5, F1 = 2(.5)(.4)/.9 = 4/9.  soft: P = 2.5/4.5 = 5/9, R = 2.5/5.5 = 5/11,
    # F1 = 2(5/9)(5/11) / (5/9 + 5/11) = (50/99) / (100/99) = 1/2.
    assert o["hard"] == pytest.approx({"precision": 0.5, "recall": 0.4, "f1": 4 / 9})
    assert o["soft"] == pytest.approx({"precision": 5 / 9, "recall": 5 / 11, "f1": 0.5})
    k = res["by_kind"]
    # chart: TP 1 / 1.5, FP 1, FN 1 -> hard 1/2 everywhere; soft P = R = 1.5/2.5 = 0.6.
    assert k["chart"]["hard"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert k["chart"]["soft"] == pytest.approx({"precision": 0.6, "recall": 0.6, "f1": 0.6})
    assert k["table"]["soft"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    # svg: TP 0, FP 0, FN 1: P = 0/0 -> 0, R = 0/1 = 0, F1 0.
    assert k["svg"]["hard"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    t = res["by_type"]
    # text_error: P2's partial is credited to its predicted type (TP soft 0.5); R6 is a FN.
    # hard: all 0.  soft: P = .5/.5 = 1, R = .5/1.5 = 1/3, F1 = 2(1/3)/(4/3) = 1/2.
    assert (t["text_error"]["tp_soft"], t["text_error"]["fp"], t["text_error"]["fn"]) == (0.5, 0, 1)
    assert t["text_error"]["soft"] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5})
    assert t["data_error"]["hard"]["f1"] == t["numeric_error"]["hard"]["f1"] == 1.0
    assert t["structure_error"]["fp"] == 1 and t["style_error"]["fn"] == 1 and t["shape_error"]["fn"] == 1
    # Nothing of text_symbol_error anywhere: TP = FP = FN = 0 -> hard F1 1 (f1_score's rule), soft F1 0.
    assert t["text_symbol_error"]["hard"]["f1"] == 1.0 and t["text_symbol_error"]["soft"]["f1"] == 0.0
    assert set(k["table"]["by_type"]) == {"layout_error", "text_error", "numeric_error"}
    # Severity sums as in the per_error example: x = [6, 3, 0, 0], y = [6, 3, 0, 3] -> r = sqrt(8/11).
    assert res["severity_pearson"] == pytest.approx(math.sqrt(8 / 11))
    assert math.isnan(k["chart"]["severity_pearson"])  # one chart item
    with pytest.raises(ValueError, match="kind"):
        evaluate(PREDS, REFS)  # the allowed types depend on the kind


def test_official_drops_an_off_list_reference_error_and_keeps_the_item(tmp_path):
    human = [{"type": "numeric_error", "severity": 2, "description": "total 1000 should be 1000.5"},
             {"type": "data_error", "severity": 3, "description": "chart type in a table"},  # not a table type
             {"category": "text_error", "severity": 1, "description": "typed by category"}]  # no `type`
    pred = {"errors": [{"type": "numeric_error", "severity": 2, "description": "total 1000 should be 1000.5"}]}
    f = _write_jsonl(tmp_path / "b.jsonl", [_item(0, kind="table", human_errors=human, pred_json=pred)])
    assert load_bench(f).items == []  # the default loader rejects the item (label bugs surface)
    items = load_bench(f, off_list_errors="drop").items
    assert [it.id for it in items] == ["it0"] and len(items[0].reference.errors) == 2  # category kept there
    res = evaluate_items(items, "pred_json")
    # Official: only the `type`-typed, allowed error is a reference: TP 1, FP 0, FN 0 -> F1 1 (hard, soft).
    assert res["n_items"] == 1 and res["n_dropped_reference_errors"] == 2
    assert (res["overall"]["tp_hard"], res["overall"]["fp"], res["overall"]["fn"]) == (1, 0, 0)
    assert res["overall"]["hard"]["f1"] == 1.0 and res["overall"]["soft"]["f1"] == 1.0


def test_official_missing_severity_counts_zero_and_per_type_correlation():
    def err(t, description, severity=None):
        e = {"type": t, "description": description}
        return e if severity is None else {**e, "severity": severity}

    refs = [[err("data_error", "bar 1", 3), err("text_error", "title")],  # text severity missing -> 0
            [err("data_error", "bar 2", 1)],
            [err("text_error", "legend", 2)]]
    preds = [{"errors": [err("data_error", "bar 1", 2), err("text_error", "title", 1)]},
             {"errors": [err("data_error", "bar 2", 1)]},
             {"errors": [err("text_error", "legend", 3)]}]
    res = evaluate(preds, refs, kind="chart")
    by_type = res["by_kind"]["chart"]["severity_pearson_by_type"]
    # data_error: x = [2, 1, 0], y = [3, 1, 0]; dx = [1, 0, -1], dy = [5/3, -1/3, -4/3]
    # sum dx dy = 3, sum dx^2 = 2, sum dy^2 = 42/9 -> r = 3 / sqrt(2 * 42/9) = sqrt(27/28).
    assert by_type["data_error"] == pytest.approx(math.sqrt(27 / 28))
    # text_error: x = [1, 0, 3], y = [0, 0, 2] (missing -> 0); dx = [-1/3, -4/3, 5/3], dy = [-2/3, -2/3, 4/3]
    # sum dx dy = 30/9, sum dx^2 = 42/9, sum dy^2 = 24/9 -> r = 30 / sqrt(42 * 24) = 5 / (2 sqrt 7).
    assert by_type["text_error"] == pytest.approx(5 / (2 * math.sqrt(7)))
    # Types never present sum to 0 on both sides: constant, nan with a note.
    assert math.isnan(by_type["structure_error"]) and math.isnan(by_type["style_error"])
    assert any(n.startswith("chart/style_error:") for n in res["notes"])
    # Totals: x = [3, 1, 3], y = [3, 1, 2]; dx = [2/3, -4/3, 2/3], dy = [1, -1, 0]
    # sum dx dy = 2, sum dx^2 = 8/3, sum dy^2 = 2 -> r = 2 / sqrt(16/3) = sqrt(3)/2 (chart and overall).
    assert res["by_kind"]["chart"]["severity_pearson"] == pytest.approx(math.sqrt(3) / 2)
    assert res["severity_pearson"] == pytest.approx(math.sqrt(3) / 2)
    assert res["overall"]["hard"]["f1"] == 1.0  # every error found exactly


def test_llm_matcher_follows_the_official_cleaning():
    prompts = []

    def complete(prompt):
        prompts.append(prompt)
        return ("```json\n" + json.dumps({"matches": [
            {"pred_id": 0, "gt_id": 1, "match_level": "partial"},
            {"pred_id": 0, "gt_id": 0, "match_level": "yes"},  # pred 0 already used: dropped
            {"pred_id": 1, "gt_id": 0, "match_level": "yes"},
            {"pred_id": 7, "gt_id": 0, "match_level": "yes"},  # out of range: dropped
            {"pred_id": 1, "gt_id": 1, "match_level": "no"},
        ]}) + "\n```")

    preds = [D("text_error", 1, "", "a"), D("text_error", 2, "", "b")]
    refs = [D("text_error", 1, "", "c"), D("text_error", 3, "", "d")]
    res = evaluate([Critique(tuple(preds))], [Critique(tuple(refs))], kind="table",
                   config=MatchConfig(matcher=LLMMatcher(complete)))
    assert '"gt_id": 1' in prompts[0] and "text_error, numeric_error" in prompts[0]
    o = res["overall"]
    # Kept: (0, 1, partial), (1, 0, yes): hard TP 1, soft 1.5, nothing unmatched.
    assert (o["tp_hard"], o["tp_soft"], o["fp"], o["fn"]) == (1, 1.5, 0, 0)
    # An unreadable reply leaves the item out, as the official scorer does with a failed item.
    res = evaluate([Critique(tuple(preds))] * 2, [Critique(tuple(refs))] * 2, kind="table", ids=["a", "b"],
                   config=MatchConfig(matcher=LLMMatcher(lambda prompt: "no idea")))
    assert res["failed_items"] == ["a", "b"] and res["n_items"] == 0


def test_image_paths_resolve_against_the_file_folder_and_name_the_item(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gt0.png").write_bytes(b"png")
    (tmp_path / "sub" / "pr0.png").write_bytes(b"png")
    missing = str(tmp_path / "elsewhere" / "gt1.png")
    f = _write_jsonl(tmp_path / "sub" / "b.jsonl", [_item(0), _item(1, gt_img_path=missing)])
    data = load_bench(f, require_images=True)
    assert data.items[0].gt_img_path == str(tmp_path / "sub" / "gt0.png")
    message = str(data.errors[0])
    assert message.startswith("item 'it1'") and missing in message and "absolute path that does not exist" in message
