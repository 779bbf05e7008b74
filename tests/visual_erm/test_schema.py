"""Critique schema and parser: properties (never raises, exact round trip, hostile input) and the
messy outputs real judges write."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visual_erm import json_extract
from visual_erm.schema import (
    ALL_CATEGORIES,
    CATEGORIES,
    KINDS,
    Critique,
    Discrepancy,
    coerce_critique,
    coerce_severity,
    normalize_category,
    parse_critique,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KIND_OR_NONE = st.sampled_from([None, *KINDS])


@st.composite
def critiques(draw, kind=None):
    cats = sorted(CATEGORIES[kind]) if kind else sorted(ALL_CATEGORIES)
    errors = draw(
        st.lists(
            st.builds(
                Discrepancy,
                category=st.sampled_from(cats),
                severity=st.integers(1, 3),
                location=st.text(max_size=30),
                description=st.text(max_size=60),
            ),
            max_size=5,
        )
    )
    return Critique(tuple(errors))


JSONISH = st.text(alphabet='{}[]":,\\ \n`<>/thinkerors0123.-tyecagsv', max_size=300)


# ---------------------------------------------------------------- properties


@SETTINGS
@given(st.one_of(st.text(max_size=400), JSONISH), KIND_OR_NONE)
def test_never_raises_on_arbitrary_text(text, kind):
    c = parse_critique(text, kind)
    assert isinstance(c, Critique)
    assert all(1 <= e.severity <= 3 for e in c.errors)
    if kind is not None:
        assert all(e.category in CATEGORIES[kind] for e in c.errors)


@SETTINGS
@given(st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda s: st.lists(s, max_size=3)))
def test_non_str_input_is_invalid(obj):
    c = parse_critique(obj)
    assert not c.valid and c.errors == ()


@SETTINGS
@given(critiques(), st.sampled_from([None, 2]))
def test_round_trips_to_json_exactly(c, indent):
    assert parse_critique(c.to_json(indent=indent)) == c


@SETTINGS
@given(st.sampled_from(KINDS).flatmap(lambda k: st.tuples(st.just(k), critiques(k))))
def test_round_trips_with_kind(kind_and_critique):
    kind, c = kind_and_critique
    assert parse_critique(c.to_json(), kind) == c


@SETTINGS
@given(critiques(), st.text(alphabet="abc xyz.,!?\n", max_size=80), st.text(alphabet="abc .\n", max_size=40))
def test_found_inside_think_fence_and_chatter(c, thought, chatter):
    draft = '{"errors": []}'
    text = f"<think>{thought} {draft}</think>\n{chatter}\n```json\n{c.to_json(2)}\n```\n{chatter}"
    parsed = parse_critique(text)
    assert parsed.valid and parsed.errors == c.errors


# ---------------------------------------------------------------- hostile input (behaviour, no clocks)

GOOD = '{"errors": [{"category": "data_error", "severity": 2, "location": "bar", "description": "x"}]}'


@pytest.mark.parametrize(
    "prefix",
    ["{" * 200_000, "[" * 200_000, '"' * 200_000, "\\" * 200_000, '{"' * 100_000, '{"' * 99_999],
    ids=["braces", "brackets", "quotes", "backslashes", "brace-quote-even", "brace-quote-odd"],
)
def test_pathological_prefix_then_answer(prefix):
    # The odd brace-quote prefix leaves the scanner inside a string; the '{"errors":' restart finds it.
    c = parse_critique(prefix + "\n" + GOOD)
    assert c.valid and c.errors == (Discrepancy("data_error", 2, "bar", "x"),)


def test_stray_quote_and_brace_in_prose():
    c = parse_critique('The title says "Sales {2021" but ' + GOOD + " -- done")
    assert c.valid and c.errors == (Discrepancy("data_error", 2, "bar", "x"),)


@pytest.mark.parametrize(
    "text",
    ["{" * 200_000, "[" * 100_000 + "]" * 100_000, '"' * 200_000, "<think>" * 30_000, "```" * 60_000],
    ids=["braces", "nested", "quotes", "think", "fences"],
)
def test_pathological_alone_is_invalid(text):
    c = parse_critique(text)
    assert not c.valid and c.errors == ()


@pytest.mark.parametrize(
    "text",
    ["{x}\n" * 50_000, "[,]" * 60_000, "[" * 1000 + "," + "]" * 1000 + "[1,]" * 30_000, '{"a":1}' * 30_000],
    ids=["bad-objects", "commas", "nested-commas", "good-objects"],
)
def test_decoder_work_is_linear(text, monkeypatch):
    """Total characters handed to the JSON decoder stay within the linear budget.

    Guards the quadratic trap of decoding at an offset into the whole text: every JSONDecodeError
    counts the newlines before its position.
    """
    seen = []

    class CountingDecoder:
        def raw_decode(self, doc, idx=0):
            seen.append(len(doc))
            return json_extract.json.JSONDecoder(strict=False).raw_decode(doc, idx)

    monkeypatch.setattr(json_extract, "_DECODER", CountingDecoder())
    c = parse_critique(text + GOOD)
    assert c.valid and len(c.errors) == 1
    n = len(text + GOOD)
    # A whole-text attempt, one scan per source (fenced blocks + body) and the budgeted spans.
    assert sum(seen) <= 3 * n + json_extract.BUDGET_FACTOR * n + json_extract.BUDGET_FLOOR


def test_deeply_nested_valid_json_is_handled():
    deep = "[" * 100_000 + "]" * 100_000
    text = '{"errors": [{"category": "text_error", "severity": 1}], "extra": ' + deep + "}"
    c = parse_critique(text)  # too deep for the decoder as a whole; the errors list is still found
    assert c.errors == (Discrepancy("text_error", 1),)


def test_long_description_round_trips():
    c = Critique((Discrepancy("shape_error", 3, "circle", "r" * 200_000),))
    assert parse_critique(c.to_json(), "svg") == c


def test_many_errors_are_all_kept_and_problems_bounded():
    items = [{"category": "text_error", "severity": 1}] * 5000 + [{"severity": 1}] * 5000
    c = parse_critique(json.dumps({"errors": items}))
    assert len(c.errors) == 5000
    assert len(c.problems) <= 33 and c.problems[-1].endswith("more problems")


# ---------------------------------------------------------------- worked examples of messy output


def test_think_fence_and_trailing_text():
    text = (
        "<think>The bar for 2021 looks off. Draft: {\"errors\": []}</think>\n"
        "Here is my critique:\n```json\n"
        '{"errors": [{"category": "Data Error", "severity": "major", "location": "bar 2021",'
        ' "description": "height 45, reference 54"}]}\n```\nLet me know if you need more.'
    )
    c = parse_critique(text, "chart")
    assert c == Critique((Discrepancy("data_error", 3, "bar 2021", "height 45, reference 54"),))


def test_orphan_close_think_drops_the_reasoning():
    # The chat template opened <think> in the prompt: the reply starts inside the block.
    text = 'draft {"errors": [{"category": "text_error", "severity": 1}]}</think>{"errors": []}'
    c = parse_critique(text, "chart")
    assert c.valid and c.errors == ()


def test_unclosed_think_is_invalid():
    c = parse_critique('<think>maybe {"errors": [{"category": "text_error", "severity": 1}]}')
    assert not c.valid and "unclosed <think> block dropped" in c.problems


def test_published_table_judge_form():
    text = json.dumps(
        {"errors": [{"type": "numeric_error", "severity": 2, "description": "cell (2,3) is 10 not 1.0"},
                    {"type": "Layout Error", "severity": 1, "description": "extra column"}]}
    )  # fmt: skip
    c = parse_critique(text, "table")
    assert c.errors == (
        Discrepancy("numeric_error", 2, "", "cell (2,3) is 10 not 1.0"),
        Discrepancy("layout_error", 1, "", "extra column"),
    )
    assert c.total_severity == 3


@pytest.mark.parametrize(
    "raw, expected",
    [(1, 1), (3, 3), ("2", 2), (" 3 (major)", 3), ("Major", 3), ("moderate", 2), ("minor", 1),
     (2.4, 2), (2.5, 3), ("1.6", 2), (0, 1), (7, 3), (-2, 1), (float("inf"), 3),
     (True, None), (float("nan"), None), ("unknown", None), (None, None), ([2], None)],
)  # fmt: skip
def test_severity_coercion(raw, expected):
    assert coerce_severity(raw) == expected


def test_clamped_and_coerced_severities_are_noted():
    items = [{"category": "style_error", "severity": 5}, {"category": "style_error", "severity": 1.7}]
    c = parse_critique(json.dumps({"errors": items}))
    assert [e.severity for e in c.errors] == [3, 2]
    assert any("5" in p for p in c.problems) and any("1.7" in p for p in c.problems)


@pytest.mark.parametrize(
    "raw, kind, expected",
    [("Data Error", "chart", "data_error"), ("data-error", None, "data_error"), ("data", "chart", "data_error"),
     ("TEXT/SYMBOL error", "svg", "text_symbol_error"), ("  layout_error ", "table", "layout_error"),
     ("color", None, "color"), ("!!", None, "")],
)  # fmt: skip
def test_category_normalisation(raw, kind, expected):
    assert normalize_category(raw, kind) == expected


def test_foreign_categories_dropped_with_note_when_kind_given():
    items = [{"category": "shape_error", "severity": 2}, {"category": "data_error", "severity": 1}]
    text = json.dumps({"errors": items})
    assert len(parse_critique(text).errors) == 2
    c = parse_critique(text, "chart")
    assert c.errors == (Discrepancy("data_error", 1),)
    assert any("shape_error" in p and "chart" in p for p in c.problems)


def test_uncoercible_items_dropped_but_critique_valid():
    items = [
        "just text",
        {"severity": 2},
        {"category": "text_error"},
        {"category": 3, "severity": 1},
        {"category": "text_error", "severity": 2, "location": [1, 2], "description": 5},
    ]
    text = json.dumps({"errors": items})
    c = parse_critique(text, "table")
    assert c.valid and c.errors == (Discrepancy("text_error", 2, "[1, 2]", "5"),)
    assert len(c.problems) == 4


def test_missing_severity_default():
    text = '{"errors": [{"type": "text_error", "description": "typo"}]}'
    assert parse_critique(text).errors == ()
    assert parse_critique(text, default_severity=1).errors == (Discrepancy("text_error", 1, "", "typo"),)


def test_single_quotes_are_not_json():
    # Decision: Python-literal pseudo JSON is a formatting failure, not a "no error" critique.
    c = parse_critique("{'errors': [{'category': 'data_error', 'severity': 2}]}")
    assert not c.valid
    assert not parse_critique("{'errors': []}").valid


def test_trailing_commas_forgiven():
    c = parse_critique('Answer: {"errors": [{"category": "text_error", "severity": 1,},],}')
    assert c.valid and c.errors == (Discrepancy("text_error", 1),)


def test_bare_lists():
    assert parse_critique("[]") == Critique((), True, ("bare list of errors (no enclosing object)",))
    c = parse_critique('Errors: [{"type": "text_error", "severity": 2}] done')
    assert c.valid and c.errors == (Discrepancy("text_error", 2),)
    # A list in prose that does not look like errors is not a critique.
    assert not parse_critique("See [1] and [] for details.").valid


def test_object_preferred_over_bare_list_and_wrapped_objects_found():
    text = 'refs [{"type": "text_error", "severity": 1}] then {"result": {"errors": []}}'
    c = parse_critique(text)
    assert c.valid and c.errors == ()


def test_invalid_shapes():
    assert not parse_critique("").valid
    assert not parse_critique('{"errors": null}').valid
    assert not parse_critique('{"error_count": 0}').valid
    assert not parse_critique('{"errors": [{"category": "text_error", "severity": 1}').valid  # truncated
    assert not parse_critique('{"errors": []}', kind="video").valid
    assert parse_critique('{"errors": []}') == Critique()
    assert parse_critique('{"Errors": {"category": "text_error", "severity": 1}}').errors == (
        Discrepancy("text_error", 1),
    )


def test_dataclass_validation_and_dicts():
    with pytest.raises(ValueError):
        Discrepancy("text_error", 4)
    with pytest.raises(TypeError):
        Discrepancy("text_error", True)
    with pytest.raises(ValueError):
        Discrepancy("", 1)
    with pytest.raises(TypeError):
        Critique(({"category": "text_error"},))
    d = Discrepancy("text_error", 2, "title", "typo")
    assert Critique([d]).to_dict() == {"errors": [d.to_dict()]}
    assert Critique([d]).errors == (d,)
    assert coerce_critique([d], "table") == Critique((d,))
    assert coerce_critique({"errors": [d.to_dict()]}) == Critique((d,))
    assert not coerce_critique(42).valid
