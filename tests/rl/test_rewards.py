"""Rewards against their reference implementations and worked examples; Visual-ERM gating."""
import re

import markdown_it
import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage.metrics import structural_similarity
from table_recognition_metric import TEDS

from render import RenderResult
from rl import rewards as R
from rl.rewards import REWARDS, ReferenceTask, RewardInput, compute_rewards
from visual_erm.schema import Critique, Discrepancy


def fenced(lang, code):
    return f"Answer:\n```{lang}\n{code}\n```"


def ok(image):
    return RenderResult(image=image)


def drawing(size=(64, 48), shapes=(((8, 8, 30, 40), (200, 30, 30)),), background="white"):
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for box, colour in shapes:
        draw.rectangle(box, fill=colour)
    return image


# ---------------------------------------------------------------- text similarity


def test_edit_distance_worked_example():
    # kitten -> sitting: substitute k/s, substitute e/i, insert g: distance 3 over the longer length 7.
    task = ReferenceTask("chart", "kitten")
    assert R.text_similarity(task, fenced("python", "sitting")) == pytest.approx(1 - 3 / 7)
    assert R.text_similarity(task, fenced("python", "  kitten\n")) == 1.0  # surrounding whitespace ignored
    assert R.text_similarity(task, "no code here") == 0.0
    assert R.text_similarity(ReferenceTask("chart", ""), fenced("python", "")) == 1.0


# ---------------------------------------------------------------- TEDS


_MD = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")


def reference_teds_html(code):
    """Independent conversion for the oracle: markdown-it for Markdown, th -> td, <html><body> wrapper."""
    html = code if "<table" in code.lower() else _MD.render(code)
    html = re.sub(r"<th(?=[\s>])", "<td", html).replace("</th>", "</td>")
    return f"<html><body>{html}</body></html>"


BASE_HTML = ("<table><tr><td>Region</td><td>2024</td><td>2025</td></tr>"
             "<tr><td>North</td><td>1,204</td><td>1,390</td></tr>"
             "<tr><td>South</td><td>988</td><td>1,021</td></tr></table>")
BASE_MD = ("| Model | Params | Score |\n|:--|--:|:-:|\n"
           "| Qwen3-VL-8B | 8.8 B | 71.2 |\n| Qwen3-VL-4B | 4.4 B | 66.0 |\n| Qwen3-VL-2B | 2.1 B | 58.9 |")
SPANS = ('<table><tr><td rowspan="2">Region</td><td colspan="2">Sales</td></tr><tr><td>2024</td><td>2025</td></tr>'
         "<tr><td>North</td><td>1,204</td><td>1,390</td></tr></table>")
TABLE_PAIRS = [  # (prediction, reference)
    (BASE_HTML, BASE_HTML),
    (BASE_HTML.replace("1,204", "1,240"), BASE_HTML),
    (BASE_HTML.replace("North", "Nroth"), BASE_HTML),
    (BASE_HTML.replace("<tr><td>South</td><td>988</td><td>1,021</td></tr>", ""), BASE_HTML),
    (BASE_HTML.replace("<td>2025</td>", "<td>2025</td><td>2026</td>"), BASE_HTML),
    (BASE_HTML.replace("<td>North</td>", "<td><b>North</b></td>"), BASE_HTML),
    (BASE_HTML.replace("<td>Region</td><td>2024</td>", '<td colspan="2">Region 2024</td>'), BASE_HTML),
    (SPANS, SPANS),
    (SPANS.replace('rowspan="2"', 'rowspan="1"'), SPANS),
    (SPANS.replace('colspan="2"', ""), SPANS),
    (SPANS, BASE_HTML),
    ("<table><tr><td>x</td></tr></table>", BASE_HTML),
    ("<table></table>", BASE_HTML),
    (BASE_HTML.replace("<td>", "<td> ", 1), BASE_HTML),
    (BASE_MD, BASE_MD),
    (BASE_MD.replace("71.2", "72.1"), BASE_MD),
    (BASE_MD.replace("| Qwen3-VL-2B | 2.1 B | 58.9 |", ""), BASE_MD),
    (BASE_MD.replace("Params", "Parms"), BASE_MD),  # a header typo: visible only after th -> td
    (BASE_MD.replace(":--|--:|:-:", "---|---|---"), BASE_MD),
    (BASE_MD.replace("| Score |", "| Score | Rank |").replace(":-:|", ":-:|--|"), BASE_MD),
    (BASE_HTML, BASE_MD),
    (BASE_MD, SPANS),
    ("<table><thead><tr><th>Model</th><th>Params</th><th>Score</th></tr></thead><tbody>"
     "<tr><td>Qwen3-VL-8B</td><td>8.8 B</td><td>71.2</td></tr></tbody></table>", BASE_MD),
]


@pytest.mark.parametrize("structure_only", [False, True])
def test_teds_matches_table_recognition_metric_on_23_pairs(structure_only):
    name = "teds_structure" if structure_only else "teds"
    oracle = TEDS(structure_only=structure_only)
    ours, theirs = [], []
    for pred, ref in TABLE_PAIRS:
        ours.append(REWARDS[name].fn(ReferenceTask("table", ref), fenced("markdown", pred)))
        theirs.append(oracle(reference_teds_html(pred), reference_teds_html(ref)))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert len(set(np.round(theirs, 6))) >= (4 if structure_only else 10)  # the pairs are not all alike
    if not structure_only:
        assert ours[0] == 1.0 and 0 < ours[1] < 1 and ours[17] < 1.0  # header typo counts


def test_teds_matches_on_generated_tables_when_available():
    tasks = pytest.importorskip("visual_erm.tasks")
    pairs = []
    for seed in range(6):
        ref = tasks.generate("table", seed).code
        pairs += [(ref, ref), (ref.replace("1", "7", 2), ref), (tasks.generate("table", seed + 50).code, ref)]
    oracle = TEDS()
    for pred, ref in pairs:
        ours = R.teds(ReferenceTask("table", ref), fenced("markdown", pred))
        assert ours == pytest.approx(oracle(reference_teds_html(pred), reference_teds_html(ref)), abs=1e-12)


def test_teds_failures_and_misuse():
    task = ReferenceTask("table", BASE_MD)
    assert R.teds(task, "no table") == 0.0
    assert R.teds(task, fenced("markdown", "just prose, no table")) == 0.0
    assert R.teds(task, fenced("html", '<table><tr><td colspan="x">bad span</td></tr></table>')) == 0.0
    with pytest.raises(R.RewardFailure, match="cap"):  # a reference too big to score is the reward's failure
        R.teds(task, fenced("markdown", BASE_MD), max_nodes=3)
    with pytest.raises(ValueError, match="table reward"):
        R.teds(ReferenceTask("svg", "<svg/>"), "x")
    with pytest.raises(ValueError, match="has none"):  # a dataset task without reference code
        R.teds(ReferenceTask("table", None), fenced("markdown", BASE_MD))
    with pytest.raises(ValueError, match="has none"):
        R.text_similarity(ReferenceTask("table", None), fenced("markdown", BASE_MD))


def test_teds_own_failures_are_counted_and_warned_never_a_silent_zero(caplog):
    """An unreadable reference, or a TEDS that cannot score it, is the reward's failure: counted."""
    good, broken = ReferenceTask("table", BASE_MD), ReferenceTask("table", '<table><tr><td colspan="x">a</td></tr>')
    inputs = [RewardInput(good, fenced("markdown", BASE_MD)), RewardInput(broken, fenced("markdown", BASE_MD)),
              RewardInput(good, "no table")]
    with caplog.at_level("WARNING"):
        rewards, failed = R.score_rewards("teds", inputs)
    np.testing.assert_array_equal(rewards, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(failed, [False, True, False])  # "no table" is the policy's 0, not a failure
    assert "reward teds failed on sample 1" in caplog.text


# ---------------------------------------------------------------- SSIM and MSE


def test_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    reference = drawing(shapes=(((8, 8, 30, 40), (200, 30, 30)), ((35, 5, 60, 20), (30, 30, 200))))
    noisy = np.clip(np.asarray(reference, np.int16) + rng.integers(-40, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
    task = ReferenceTask("chart", "", reference)
    ref = np.asarray(reference, np.float64) / 255
    cand = np.asarray(noisy, np.float64) / 255
    expected = structural_similarity(ref, cand, data_range=1.0, channel_axis=-1)
    assert 0.1 < expected < 0.9
    assert R.ssim(task, "", ok(Image.fromarray(noisy))) == pytest.approx(expected, abs=1e-12)
    gray = structural_similarity(ref @ [0.299, 0.587, 0.114], cand @ [0.299, 0.587, 0.114], data_range=1.0)
    assert R.ssim(task, "", ok(Image.fromarray(noisy)), grayscale=True) == pytest.approx(gray, abs=1e-12)
    # A candidate of another size is resized (bicubic) to the reference's size first.
    big = Image.fromarray(noisy).resize((128, 96), Image.NEAREST)
    resized = np.asarray(big.resize((64, 48), Image.BICUBIC), np.float64) / 255
    expected = structural_similarity(ref, resized, data_range=1.0, channel_axis=-1)
    assert R.ssim(task, "", ok(big)) == pytest.approx(expected, abs=1e-12)
    assert R.ssim(task, "", ok(reference)) == 1.0


def test_mse_worked_example_and_failures():
    white = Image.new("RGB", (10, 10), "white")
    half = white.copy()
    ImageDraw.Draw(half).rectangle((0, 0, 4, 9), fill="black")  # 50 of 100 pixels black: error 1 each
    task = ReferenceTask("chart", "", white)
    assert R.mse(task, "", ok(half)) == pytest.approx(0.5)
    assert R.mse(task, "", ok(white)) == 1.0
    failed = RenderResult.failure("syntax", "SyntaxError: '(' was never closed (line 3)")
    for name in ("ssim", "mse"):
        assert REWARDS[name].fn(task, "", failed, None) == 0.0
        assert REWARDS[name].fn(task, "", None, None) == 0.0


# ---------------------------------------------------------------- Visual-ERM gating


NO_ERRORS = Critique(errors=())
TEN = Critique(errors=(Discrepancy("data_error", 3), Discrepancy("text_error", 3), Discrepancy("style_error", 2),
                       Discrepancy("structure_error", 2)))


def test_visual_erm_gating_and_values():
    task = ReferenceTask("chart", "code", drawing())
    completion = fenced("python", "import matplotlib.pyplot as plt")
    image = ok(drawing(shapes=(((10, 10, 30, 30), (0, 120, 0)),)))
    reward = R.visual_erm_reward
    assert reward(task, "no code, sorry", image, NO_ERRORS) == 0.0  # no code
    assert reward(task, completion, RenderResult.failure("runtime", "ValueError"), NO_ERRORS) == 0.0
    assert reward(task, completion, None, NO_ERRORS) == 0.0  # never rendered
    assert reward(task, completion, ok(Image.new("RGB", (64, 48), "white")), NO_ERRORS) == 0.0  # blank
    one_colour = ok(Image.new("RGB", (64, 48), (20, 40, 60)))
    assert reward(task, completion, one_colour, NO_ERRORS, blank="uniform") == 0.0  # the stricter check
    assert reward(task, completion, one_colour, NO_ERRORS) == 2.0  # the official check: only all-white is blank
    assert reward(task, completion, image, NO_ERRORS) == 2.0
    assert reward(task, completion, image, TEN) == pytest.approx(1 + (1 - 10 / 50))
    assert reward(task, completion, image, TEN, max_severity=20) == pytest.approx(1.5)
    major = '{"errors": [{"category": "data", "severity": "major"}]}'
    assert reward(task, completion, image, major) == pytest.approx(1.94)
    # Unparsable or missing critiques follow critique_reward: invalid_severity 25 of 50 -> 0.5.
    assert reward(task, completion, image, "I think they look similar.") == pytest.approx(1.5)
    assert reward(task, completion, image, None) == pytest.approx(1.5)
    assert reward(task, completion, image, Critique.invalid("bad json"), invalid_severity=50) == 1.0


def test_blank_detection_tolerates_speckle_but_not_content():
    rng = np.random.default_rng(1)
    speckled = np.full((100, 100, 3), 250, np.int16) + rng.integers(-6, 6, (100, 100, 3))
    assert R.is_blank(Image.fromarray(speckled.astype(np.uint8)), "uniform")
    assert not R.is_blank(Image.fromarray(speckled.astype(np.uint8)))  # the official check: all white only
    assert R.is_blank(Image.new("RGB", (10, 10), "white"))
    dot = Image.new("RGB", (100, 100), "white")
    ImageDraw.Draw(dot).rectangle((10, 10, 13, 13), fill="black")  # 16 of 10,000 pixels
    assert not R.is_blank(dot, "uniform") and not R.is_blank(dot)


# ---------------------------------------------------------------- embedding cosine and the registry


@pytest.fixture(scope="module")
def embedder():
    from policy.config import Qwen3VLConfig
    from policy.model import init_model

    return R.VisionEmbedder(init_model(Qwen3VLConfig.tiny(), seed=0), max_images=4)


def test_embedding_identical_images_cosine_one_and_batch_matches_single(embedder):
    reference = drawing()
    other = drawing(size=(80, 40), shapes=(((5, 5, 70, 20), (10, 160, 10)),))
    task = ReferenceTask("chart", "code", reference)
    features = embedder([reference, other, reference])
    assert features.shape == (3, 32) and features.dtype == np.float32
    np.testing.assert_allclose(features[0], features[2], rtol=1e-5, atol=1e-6)
    assert R.embedding_cosine(task, "", ok(reference.copy()), embedder=embedder) == pytest.approx(1.0, abs=1e-5)
    inputs = [RewardInput(task, "", ok(img)) for img in (reference, other, other, reference)]
    inputs.append(RewardInput(task, "", RenderResult.failure("timeout", "ran past 10 s")))
    batch = compute_rewards("embedding_cosine", inputs, embedder=embedder)  # 6 images: two device calls
    single = [R.embedding_cosine(x.task, "", x.rendered, embedder=embedder) for x in inputs]
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert batch[-1] == 0.0 and batch[1] < 1.0


def test_compute_rewards_registry():
    assert set(REWARDS) == {"visual_erm", "text_similarity", "teds", "teds_structure", "ssim", "mse",
                            "embedding_cosine", "oracle_critic"}
    task = ReferenceTask("table", BASE_MD, drawing())
    inputs = [RewardInput(task, fenced("markdown", BASE_MD), ok(drawing()), NO_ERRORS), RewardInput(task, "nothing")]
    np.testing.assert_array_equal(compute_rewards("visual_erm", inputs, table_form="shaped"),
                                  np.array([2.0, 0.0], np.float32))
    np.testing.assert_array_equal(compute_rewards("visual_erm", inputs), np.array([0.0, -4.0], np.float32))
    np.testing.assert_array_equal(compute_rewards("teds", inputs), np.array([1.0, 0.0], np.float32))
    assert compute_rewards("text_similarity", inputs).dtype == np.float32
    with pytest.raises(KeyError, match="unknown reward"):
        compute_rewards("bleu", inputs)
    with pytest.raises(TypeError, match="embedder"):
        compute_rewards("embedding_cosine", inputs)


def test_embedder_survives_the_policy_buffers_being_donated():
    """A train step donates the policy's buffers; the embedder keeps its own frozen copy of the tower."""
    import jax
    from flax import nnx

    from policy.config import Qwen3VLConfig
    from policy.model import init_model

    model = init_model(Qwen3VLConfig.tiny(), seed=0)
    embedder = R.VisionEmbedder(model, max_images=4)
    before = embedder([drawing()])
    for leaf in jax.tree.leaves(nnx.state(model)):
        leaf.delete()  # what donate_argnums does to the policy's parameters
    np.testing.assert_array_equal(embedder([drawing()]), before)
