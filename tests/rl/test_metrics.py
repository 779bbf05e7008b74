"""Task metrics: hand-computed F1s on small traces, CIEDE2000 colour matching, TEDS/NED and SSIM/MSE,
and the sandboxed chart tracer (render/trace.py) that feeds them.

TEDS itself equals table_recognition_metric on 23 pairs: tests/rl/test_rewards.py
(test_teds_matches_table_recognition_metric_on_23_pairs); here only its reuse is checked.
"""
import itertools
import json

import numpy as np
import pytest
from PIL import Image

import render
from render.errors import RenderResult
from render.trace_schema import MAX_TEXT_CHARS, empty_trace, shrink_trace, validate_trace
from rl import metrics as M
from rl import rewards
from rl.task_sources import RLTask

PRED = {
    "texts": [["title", "Sales"], ["label", "Year"], ["label", "units"], ["legend", "A"], ["text", "B"],
              ["tick", "2020"]],
    "types": {"bar": 1, "plot": 1, "scatter": 2},
    "colors": [["bar", "#ff0000"], ["plot", "#0000ff"], ["imshow", "cmap:magma"], ["scatter", "#000000"]],
    "layout": [[2, 2, 0, 0, 0, 0], [2, 2, 0, 0, 1, 1], [2, 2, 1, 1, 0, 0], [2, 2, 1, 1, 1, 1]],
}
REF = {
    "texts": [["title", "Sales"], ["label", "Year"], ["label", "Units"], ["tick", "2020"], ["tick", "2021"],
              ["legend", "A"], ["legend", "A"]],
    "types": {"bar": 2, "plot": 1},
    "colors": [["bar", "#ff0000"], ["bar", "#000000"], ["plot", "#0000ff"], ["imshow", "cmap:viridis"]],
    "layout": [[2, 2, 0, 0, 0, 0], [2, 2, 0, 0, 1, 1], [2, 2, 1, 1, 0, 1]],
}


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=20) as p:
        yield p


def close(prf, precision, recall, f1):
    assert (prf.precision, prf.recall, prf.f1) == pytest.approx((precision, recall, f1))


# ---------------------------------------------------------------- formulas, worked by hand


def test_prf_definition_and_empty_sides():
    close(M.prf(2, 4, 3), 1 / 2, 2 / 3, 4 / 7)
    close(M.prf(0, 0, 0), 0, 0, 0)  # nothing drawn on either side: ChartMimic's evaluators return 0
    close(M.prf(0, 0, 5), 0, 0, 0)
    close(M.prf(0, 5, 0), 0, 0, 0)
    close(M.prf(0, 3, 3), 0, 0, 0)


def test_text_f1_worked_example():
    # no ticks: pred {Sales, Year, units, A, B}, ref {Sales, Year, Units, A, A}: 3 matched (case counts)
    close(M.text_f1(PRED, REF), 3 / 5, 3 / 5, 3 / 5)
    # with ticks: pred adds 2020 (6 items), ref adds 2020, 2021 (7 items): 4 matched
    close(M.text_f1(PRED, REF, ticks=True), 4 / 6, 4 / 7, 16 / 26)


def test_layout_f1_worked_example():
    # two shared cells; pred splits the bottom row into two, ref spans it with one axes
    close(M.layout_f1(PRED, REF), 2 / 4, 2 / 3, 4 / 7)


def test_type_f1_worked_example():
    # matched = min(1, 2) bar + min(1, 1) plot = 2; pred has 4 calls, ref 3
    close(M.type_f1(PRED, REF), 2 / 4, 2 / 3, 4 / 7)


def test_color_f1_worked_example():
    # bar: red = red (1), ref's black unmatched; plot: blue = blue (1); imshow: magma != viridis (0);
    # scatter: no reference group (0). matched 2 of 4 predicted and 4 reference colours.
    close(M.color_f1(PRED, REF), 2 / 4, 2 / 4, 2 / 4)
    swapped = dict(PRED, colors=[["plot", "#ff0000"], ["bar", "#0000ff"]])  # right colours, wrong types
    assert M.color_f1(swapped, dict(REF, colors=[["bar", "#ff0000"], ["plot", "#0000ff"]])).f1 < 0.5


def test_color_similarity_is_one_minus_ciede2000_over_100():
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab = rgb2lab(np.array([[1.0, 0.0, 0.0], [254 / 255, 0.0, 0.0]]))
    expected = 1 - deltaE_ciede2000(lab[0], lab[1]) / 100
    assert M.color_similarity("#ff0000", "#fe0000") == pytest.approx(expected)
    assert 0.99 < expected < 1
    assert M.color_similarity("#000000", "#ffffff") == pytest.approx(0.0, abs=1e-9)  # dE00 = 100
    assert M.color_similarity("#123456", "#123456") == 1.0
    assert M.color_similarity("cmap:viridis", "cmap:viridis") == 1.0
    assert M.color_similarity("cmap:viridis", "#440154") == 0.0


def test_color_matching_is_the_best_permutation():
    # ChartMimic maximises over permutations: here the crossed pairs beat identity (1 + 0).
    pred, ref = ["#ffffff", "#ff0000"], ["#000000", "#ff0000"]
    crossed = M.color_similarity("#ffffff", "#ff0000") + M.color_similarity("#ff0000", "#000000")
    assert crossed > 1.0
    assert M.best_matching(pred, ref) == pytest.approx(crossed)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = ["#%06x" % v for v in rng.integers(0, 2**24, 3)]
        b = ["#%06x" % v for v in rng.integers(0, 2**24, 5)]
        brute = max(sum(M.color_similarity(x, y) for x, y in zip(a, perm)) for perm in itertools.permutations(b, 3))
        assert M.best_matching(a, b) == pytest.approx(brute)
        assert M.best_matching(b, a) == pytest.approx(brute)


def test_chart_scores_of_a_failure_are_zero_and_identity_is_one():
    failed = RenderResult.failure("runtime", "boom")
    assert M.chart_scores(failed, REF) == dict.fromkeys(M.METRICS["chart"], 0.0)
    assert M.chart_scores(None, REF)["execution_rate"] == 0.0
    ok = RenderResult(image=Image.new("RGB", (8, 8)), trace=REF)
    assert M.chart_scores(ok, REF) == dict.fromkeys(M.METRICS["chart"], 1.0)
    low = M.chart_scores(RenderResult(image=Image.new("RGB", (8, 8)), trace=PRED), REF)
    assert low["low_level"] == pytest.approx((0.6 + 4 / 7 + 4 / 7 + 0.5) / 4)


def test_prediction_code_accepts_bare_chart_python():
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
    assert M.prediction_code("chart", code) == code
    assert M.prediction_code("chart", f"Here:\n```python\n{code}```") == code.rstrip("\n")
    assert M.prediction_code("chart", "plt.plot([1, 2)") is None  # not Python
    assert M.prediction_code("chart", "no code at all") is None


def test_table_scores_reuse_rewards_and_ned_worked_example():
    markdown = "| Name | Value |\n|---|---|\n| alpha | 12 |"
    html = ("<table><thead><tr><th>Name</th><th>Value</th></tr></thead>\n"
            "<tbody><tr><td>alpha</td><td>12</td></tr></tbody></table>")
    task = RLTask("t", "table", None, "", markdown, "test")
    same = M.table_scores(task, f"```html\n{html}\n```")
    assert same == {"teds": 1.0, "teds_structure": 1.0, "ned": 0.0}  # Markdown and HTML compare equal
    typo = "| Name | Value |\n|---|---|\n| alpha | 13 |"
    scores = M.table_scores(task, typo)
    document = rewards.teds_document(markdown).replace("\n", "")  # no other whitespace between tags
    assert scores["ned"] == pytest.approx(1 / len(document))  # one substitution
    # TEDS over the 9 nodes table, thead, tr, th x2, tbody, tr, td x2: the one changed td costs its
    # content's edit distance ["1", "2"] -> ["1", "3"] / 2 = 1/2, so TEDS = 1 - 0.5 / 9.
    assert scores["teds"] == pytest.approx(1 - 0.5 / 9)
    assert scores["teds_structure"] == 1.0
    assert M.table_scores(task, "no table here") == {"teds": 0.0, "teds_structure": 0.0, "ned": 1.0}
    assert M.normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)


def test_svg_scores_worked_example():
    white = Image.new("RGB", (16, 16), "white")
    half = np.full((16, 16, 3), 255, np.uint8)
    half[:, :8] = 0
    rendered = RenderResult(image=Image.fromarray(half))
    task = RLTask("s", "svg", white, "", "<svg/>", "test")
    scores = M.svg_scores(task, "", rendered)
    assert scores["render_rate"] == 1.0
    assert scores["mse"] == pytest.approx(0.5)  # half the pixels off by 1 in every channel
    assert scores["ssim"] == M.starvector_ssim(np.asarray(white), half)
    assert M.svg_scores(task, "", RenderResult(image=white))["ssim"] == pytest.approx(1.0)
    # A failed render is scored as StarVector's rasterizer scores it: a white canvas.
    assert M.svg_scores(task, "", RenderResult.failure("syntax", "x")) == {"render_rate": 0.0, "ssim": 1.0, "mse": 0.0}


def ssim_by_hand(a, b):
    """StarVector's compute_SSIM (skimage structural_similarity on uint8 RGB, win_size=11, no Gaussian
    weights), written out: L = 255, C1 = (0.01 L)^2, C2 = (0.03 L)^2, every 11x11 window fully inside
    the image, variances and covariance with the sample normalisation N / (N - 1), N = 121; the mean
    SSIM per channel, then the mean over channels."""
    from numpy.lib.stride_tricks import sliding_window_view

    c1, c2, n = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 121
    values = []
    for c in range(a.shape[2]):
        x = sliding_window_view(a[..., c].astype(np.float64), (11, 11))
        y = sliding_window_view(b[..., c].astype(np.float64), (11, 11))
        mx, my = x.mean(axis=(-2, -1)), y.mean(axis=(-2, -1))
        vx = (x * x).mean(axis=(-2, -1)) - mx * mx
        vy = (y * y).mean(axis=(-2, -1)) - my * my
        vxy = (x * y).mean(axis=(-2, -1)) - mx * my
        vx, vy, vxy = (v * n / (n - 1) for v in (vx, vy, vxy))
        s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s.mean())
    return float(np.mean(values))


def test_ssim_equals_starvectors_formula_on_10_pairs():
    rng = np.random.default_rng(0)
    seven_by_seven_differs = 0
    for i in range(10):
        h, w = 16 + 3 * i, 40 - 2 * i
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if i % 2:  # similar pairs: the first image plus clipped noise
            b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
        else:  # unrelated blocks
            b = np.kron(rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)), np.ones((4, 4, 1)))[:h, :w].astype(np.uint8)
        ours = M.starvector_ssim(a, b)
        assert ours == pytest.approx(ssim_by_hand(a, b), rel=1e-9, abs=1e-12)
        from skimage.metrics import structural_similarity  # the window matters: 7x7 on [0, 1] floats differs
        old = structural_similarity(a / 255.0, b / 255.0, data_range=1.0, channel_axis=-1)
        seven_by_seven_differs += abs(old - ours) > 1e-6
    assert seven_by_seven_differs == 10


def test_summarize_means_per_kind_and_skips_reference_failures():
    rows = [{"kind": "svg", "render_rate": 1.0, "ssim": 0.5, "mse": 0.2},
            {"kind": "svg", "render_rate": 0.0, "ssim": 0.0, "mse": 1.0},
            {"kind": "chart", "reference_error": "runtime: x"}]
    out = M.summarize(rows)
    assert out["svg"] == {"n": 2, "skipped": 0, "render_rate": 0.5, "ssim": 0.25, "mse": 0.6}
    assert out["chart"]["n"] == 0 and out["chart"]["skipped"] == 1 and np.isnan(out["chart"]["text_f1"])
    assert "table" not in out


# ---------------------------------------------------------------- the trace schema


def test_validate_trace_accepts_exactly_the_schema():
    assert validate_trace(REF) is REF and validate_trace(empty_trace()) is not None
    bad = [
        None, [], dict(REF, extra=1), {k: REF[k] for k in ("texts", "types", "colors")},
        dict(REF, texts=[["caption", "x"]]), dict(REF, texts=[["title", "x" * (MAX_TEXT_CHARS + 1)]]),
        dict(REF, texts=[["title", 3]]), dict(REF, types={"bar": -1}), dict(REF, types={"bar": 1.0}),
        dict(REF, types={"no spaces": 1}), dict(REF, colors=[["bar", "red"]]),
        dict(REF, colors=[["bar", "#FF0000"]]), dict(REF, layout=[[1, 1, 0, 0, 0]]),
        dict(REF, layout=[[1, 1, 0, 0, 0, True]]), dict(REF, layout=[[10**6, 1, 0, 0, 0, 0]]),
    ]
    for trace in bad:
        assert validate_trace(trace) is None, trace


def test_shrink_trace_fits_the_byte_budget():
    big = dict(empty_trace(), texts=[["text", "\U0001f600" * MAX_TEXT_CHARS]] * 256)
    small = shrink_trace(big, 4096)
    assert len(json.dumps(small).encode()) <= 4096 and 0 < len(small["texts"]) < 256


# ---------------------------------------------------------------- the tracer, in the sandbox

TRACED = """
import matplotlib.pyplot as plt
plt.figure(); plt.scatter([1], [1], color="orange")        # another figure: not traced
fig, ax = plt.subplots(2, 2)
ax[0, 0].bar(["a", "b"], [1, 2], color=["red", "blue"]); ax[0, 0].set_title("Bars"); ax[0, 0].set_xlabel("X")
ax[0, 1].plot([1, 2], [3, 4], color="green", label="g"); ax[0, 1].legend()
ax[1, 0].hist([1, 2, 2, 3], color="#123456")              # calls bar inside: counted once, as hist
ax[1, 1].pie([1, 1], colors=["#000000", "#ffffff"], labels=["p", "q"])
ax[1, 1].annotate("note", (0, 0))
fig.suptitle("Top")
fig.savefig("out.png")
plt.figure(); plt.plot([0, 1])                             # drawn after the hand-over: not traced
"""


def test_tracer_reads_types_colours_layout_and_texts(pool):
    result = pool.submit("chart", TRACED, trace=True).result()
    assert result.error is None, result.error
    trace = result.trace
    assert validate_trace(trace) is trace
    assert trace["types"] == {"bar": 1, "plot": 1, "hist": 1, "pie": 1}
    assert sorted(map(tuple, trace["colors"])) == sorted([
        ("bar", "#ff0000"), ("bar", "#0000ff"), ("plot", "#008000"), ("hist", "#123456"),
        ("pie", "#000000"), ("pie", "#ffffff")])
    assert sorted(trace["layout"]) == [[2, 2, r, r, c, c] for r in (0, 1) for c in (0, 1)]
    texts = [tuple(t) for t in trace["texts"]]
    for expected in [("title", "Top"), ("title", "Bars"), ("label", "X"), ("legend", "g"), ("tick", "a"),
                     ("tick", "b"), ("text", "p"), ("text", "q"), ("text", "note")]:
        assert expected in texts
    assert M.chart_scores(result, trace) == dict.fromkeys(M.METRICS["chart"], 1.0)


def test_colorbar_internals_are_not_chart_types(pool):
    code = "import matplotlib.pyplot as plt\nplt.imshow([[1, 2], [3, 4]], cmap='magma')\nplt.colorbar()\n"
    trace = pool.submit("chart", code, trace=True).result().trace
    assert trace["types"] == {"imshow": 1} and trace["colors"] == [["imshow", "cmap:magma"]]


def test_trace_is_opt_in_and_chart_only(pool):
    plain, svg = pool.map(["chart", "svg"], [TRACED, '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'],
                          trace=True)
    assert plain.trace is not None and svg.trace is None and svg.error is None
    assert pool.submit("chart", TRACED).result().trace is None


def test_a_forged_trace_is_refused_by_the_zygote(pool):
    forge = ("import sys\nimport matplotlib.pyplot as plt\nplt.plot([1])\n"
             "keys = sys.modules['render.trace_schema'].KEYS\n"
             "sys.modules['render.trace'].build_trace = lambda *args: {**dict.fromkeys(keys, []), 'texts': 'x'}\n")
    result = pool.submit("chart", forge, trace=True).result()
    assert result.error is not None and result.error.kind == "runtime"
    assert "malformed trace" in result.error.message


def test_score_predictions_through_the_pool_worked_example(pool):
    reference = "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2], color='#ff0000')\nplt.title('T')\n"
    nearly = reference.replace("#ff0000", "#fe0000").replace("'T'", "'U'")
    task = RLTask("c", "chart", None, "", reference, "test")
    rows = M.score_predictions([task, task, task], [reference, f"```python\n{nearly}```", "```python\n1/0\n```"], pool)
    assert rows[0]["low_level"] == 1.0 and rows[0]["error"] is None
    sim = M.color_similarity("#fe0000", "#ff0000")
    assert rows[1]["text_f1"] == 0.0 and rows[1]["type_f1"] == rows[1]["layout_f1"] == 1.0
    assert rows[1]["color_f1"] == pytest.approx(sim)
    assert rows[1]["low_level"] == pytest.approx((0 + 1 + 1 + sim) / 4)
    assert rows[2]["error"] == "runtime" and rows[2]["execution_rate"] == 0.0


# ---------------------------------------------------------------- official-scorer edge cases


def test_chartmimic_thins_colour_lists_longer_than_ten():
    far = ["#ff0000", "#0000ff", "#00ff00", "#000000", "#ffffff", "#ff00ff", "#808080"]  # pairwise <= 0.7
    colors = ([["bar", c] for c in far] + [["bar", "#fe0000"], ["plot", "#ff0101"]]
              + [["imshow", "cmap:viridis"], ["imshow", "cmap:magma"]])
    # 11 entries: "#fe0000" and "#ff0101" are within 0.7 similarity of "#ff0000" (any chart type): dropped.
    assert M.color_similarity("#fe0000", "#ff0000") > 0.7 and M.color_similarity("#ff0101", "#ff0000") > 0.7
    kept = [tuple(c) for c in colors[:7] + colors[9:]]
    assert M.merge_colors(colors) == kept
    assert M.merge_colors(colors[:10]) == [tuple(c) for c in colors[:10]]  # 10 or fewer: untouched
    # color_f1 counts the thinned list: 9 predicted vs the same 9 reference colours, all matched -> 1.
    close(M.color_f1({"colors": colors}, {"colors": kept}), 1, 1, 1)


def test_chartmimic_graph_layout_and_empty_sides():
    pred = {"layout": [[1, 2, 0, 0, 0, 0], [1, 2, 0, 0, 1, 1]]}
    ref = {"layout": [[2, 1, 0, 0, 0, 0], [2, 1, 1, 1, 0, 0]]}
    close(M.layout_f1(pred, ref), 0, 0, 0)
    close(M.layout_f1(pred, ref, graph=True), 1, 1, 1)  # every axis of a graph chart is (1, 1, 0, 1, 0, 1)
    close(M.layout_f1({"layout": [[1, 1, 0, 0, 0, 0]]}, ref, graph=True), 1, 1 / 2, 2 / 3)
    assert M.is_graph_chart(RLTask("chartmimic/direct_600/graph_3", "chart", None, "", "", "chartmimic"))
    assert not M.is_graph_chart(RLTask("chartmimic/direct_600/bar_3", "chart", None, "", "", "chartmimic"))
    empty = dict(empty_trace(), types={"bar": 1}, colors=[["bar", "#ff0000"]], layout=[[1, 1, 0, 0, 0, 0]])
    assert M.text_f1(empty, empty).f1 == 0.0  # no text on either side: 0, as ChartMimic


def test_plot2code_pass_rate_and_text_match():
    pred = dict(empty_trace(), texts=[["title", "Title"], ["label", " sales "], ["tick", "2020"], ["text", " "]])
    ref = dict(empty_trace(), texts=[["title", "title"], ["label", "Sales"], ["tick", "2021"]])
    # lower-cased, stripped, non-empty: {title, sales, 2020} vs {title, sales, 2021}: 2 matched,
    # 1 unmatched on each side -> 2 / (2 + 1 + 1) = 1/2.
    assert M.text_match(pred, ref) == 0.5
    assert M.text_match(empty_trace(), empty_trace()) == 1.0
    drawn = Image.new("RGB", (8, 8), "white")
    drawn.putpixel((3, 3), (0, 0, 0))
    assert M.plot2code_scores(RenderResult(image=drawn, trace=pred), ref) == {"pass_rate": 1.0, "text_match": 0.5}
    white = RenderResult(image=Image.new("RGB", (8, 8), "white"), trace=pred)
    assert M.plot2code_scores(white, ref) == {"pass_rate": 0.0, "text_match": None}  # all white: not a pass
    assert M.plot2code_scores(RenderResult.failure("runtime", "x"), ref)["pass_rate"] == 0.0
    # The text match averages passing items only.
    rows = [{"kind": "chart", "family": "plot2code", "pass_rate": 1.0, "text_match": 0.5},
            {"kind": "chart", "family": "plot2code", "pass_rate": 0.0, "text_match": None}]
    out = M.summarize(rows)["plot2code"]
    assert out["pass_rate"] == 0.5 and out["text_match"] == 0.5 and out["unscored"] == {"text_match": 1}
    assert M.family(RLTask("plot2code/x", "chart", None, "", "", "plot2code")) == "plot2code"


def big_table(rows: int, cols: int) -> str:
    head = "<tr>" + "".join(f"<th>h{j}</th>" for j in range(cols)) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{i}.{j}</td>" for j in range(cols)) + "</tr>" for i in range(rows))
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def test_teds_of_a_perfect_2000_cell_table_is_one_without_tree_edit_distance(monkeypatch):
    # Work bound: identical documents are scored by two lxml parses and one string comparison; the
    # tree edit distance (APTED, super-quadratic in the ~2,200 nodes here) must never run, so it is
    # patched to fail.
    import table_recognition_metric

    def no_apted(*args, **kwargs):
        raise AssertionError("TEDS tree edit distance ran on identical tables")

    monkeypatch.setattr(table_recognition_metric, "TEDS", no_apted)
    code = big_table(199, 10)  # 10 header cells + 1,990 body cells = 2,000 cells
    task = RLTask("t", "table", None, "", code, "test")
    assert M.table_scores(task, f"```html\n{code}\n```") == {"teds": 1.0, "teds_structure": 1.0, "ned": 0.0}
    # A large table that differs is left unscored (None), not scored 0; summarize counts it.
    other = M.table_scores(task, big_table(199, 10).replace("<td>3.3</td>", "<td>3.4</td>"))
    assert other["teds"] is None and other["teds_structure"] is None and 0 < other["ned"] < 0.01
    summary = M.summarize([{"kind": "table", **other}, {"kind": "table", "teds": 1.0, "teds_structure": 1.0,
                                                        "ned": 0.0}])
    assert summary["table"]["teds"] == 1.0 and summary["table"]["unscored"] == {"teds": 1, "teds_structure": 1}


def test_teds_keeps_header_cells_as_the_official_metric():
    reference = "<table><tr><th>Name</th><th>Value</th></tr><tr><td>alpha</td><td>12</td></tr></table>"
    header_typo = reference.replace("Name", "Nmae")
    task = RLTask("t", "table", None, "", reference, "test")
    # PubTabNet's TEDS compares the text of td cells only: a th typo costs nothing there ...
    assert M.table_scores(task, header_typo)["teds"] == 1.0
    # ... while the GRPO reward turns th into td and charges it.
    assert rewards.teds(task, header_typo) < 1.0
