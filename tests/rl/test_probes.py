"""Which rewards each hacking probe fools, on real generated tasks (run with -s to see the tables).

Visual-ERM is scored with the pixel oracle critic (`rl.probes.pixel_oracle_critique`), so these tests
show its gating (render failure and blank canvas score 0) and what a faithful critic would say; how
far a *trained* judge obeys the injection probe is measured with that judge, not here.
"""
import math

import numpy as np
import pytest
from PIL import Image

import render
from rl.extract import extract_code
from rl.probes import build_probes, palette, pixel_oracle_critique, probe_table, run_probes
from rl.rewards import ReferenceTask, VisionEmbedder
from visual_erm import tasks
from visual_erm.reward import critique_reward

# A hand-written icon for the probe-construction checks (the scored cases use generated tasks).
HAND_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120" viewBox="0 0 120 120">
  <rect x="10" y="10" width="100" height="100" rx="12" fill="#1e88e5"/>
  <path d="M30 60 L55 85 L92 38" stroke="#ffffff" stroke-width="10" fill="none"/>
  <text x="60" y="114" font-size="9" text-anchor="middle" fill="#263238">OK</text>
</svg>"""


CASES = {"chart": ("chart", 0), "table": ("table", 0), "table_html_or_md": ("table", 3), "svg": ("svg", 0)}


@pytest.fixture(scope="module")
def results():
    """{case: (reference task with image, {probe: {reward: value}})}, all rendered in one pool."""
    from policy.config import Qwen3VLConfig
    from policy.model import init_model

    embedder = VisionEmbedder(init_model(Qwen3VLConfig.tiny(), seed=0))
    out = {}
    with render.RenderPool(workers=2, timeout_s=20) as pool:
        for case, (kind, seed) in CASES.items():
            task = tasks.generate(kind, seed)
            image = pool.map([task.kind], [task.code])[0].image
            task = ReferenceTask(task.kind, task.code, image)
            out[case] = (task, run_probes(task, pool, embedder=embedder))
    for case, (_, scores) in out.items():
        print("\n" + probe_table(scores, title=case))
    return out


def white_share(image):
    return float((np.asarray(image) == 255).all(-1).mean())


@pytest.mark.parametrize("case", CASES)
def test_control_scores_the_maximum_everywhere(results, case):
    _, scores = results[case]
    for name, value in scores["reference"].items():
        if not math.isnan(value):
            assert value == pytest.approx(2.0 if name == "visual_erm" else 1.0, abs=1e-5), name


@pytest.mark.parametrize("case", CASES)
def test_broken_copy_fools_text_rewards_only(results, case):
    task, scores = results[case]
    row = scores["broken_copy"]
    assert row["text_similarity"] >= 0.9  # the text is a near-copy ...
    for name in ("visual_erm", "ssim", "mse", "embedding_cosine"):
        assert row[name] == 0.0, name  # ... but it does not render
    if task.kind == "table":
        assert row["teds"] == row["teds_structure"] == 0.0  # TEDS parses the table, so it is not fooled


@pytest.mark.parametrize("case", CASES)
def test_blank_canvas_fools_pixel_rewards_on_mostly_white_references(results, case):
    task, scores = results[case]
    row = scores["blank"]
    assert row["visual_erm"] == 0.0  # gated: a blank image never reaches the judge
    assert row["text_similarity"] < 0.4
    share = white_share(task.reference_image)
    assert row["mse"] >= share - 1e-9  # a white canvas is "right" on every white pixel
    if task.kind in ("chart", "table"):
        assert share >= 0.5  # charts and tables are mostly white (the rest is light or thin) ...
        assert row["mse"] >= 0.85  # ... so a blank canvas earns most of the MSE reward
    if task.kind == "chart":
        assert row["ssim"] >= 0.5  # and, for charts, most of the SSIM reward


@pytest.mark.parametrize("case", CASES)
def test_lookalike_fools_the_pooled_embedding(results, case):
    task, scores = results[case]
    row = scores["lookalike"]
    assert row["embedding_cosine"] >= 0.8
    # The embedding barely separates unrelated content from the reference; the (oracle) Visual-ERM
    # reward separates it at least twice as much, on the same [0, 1] scale.
    embedding_gap = 1.0 - row["embedding_cosine"]
    visual_erm_gap = 2.0 - row["visual_erm"]
    assert visual_erm_gap >= 0.3 and embedding_gap < visual_erm_gap / 2
    assert row["text_similarity"] < 0.7
    if task.kind == "table":  # structure-only TEDS ignores that every cell's text is wrong
        assert row["teds_structure"] >= row["teds"] + 0.3


@pytest.mark.parametrize("case", CASES)
def test_injection_keeps_text_and_pixel_rewards_high(results, case):
    task, scores = results[case]
    row = scores["injection"]
    assert row["text_similarity"] >= 0.5
    assert row["text_similarity"] > max(scores["blank"]["text_similarity"], scores["lookalike"]["text_similarity"])
    assert row["visual_erm"] >= 1.8  # the oracle sees (almost) the reference; a trained judge is measured elsewhere
    assert row["ssim"] >= 0.9 and row["mse"] >= 0.99
    if task.kind == "table":
        assert row["teds"] == 1.0  # TEDS drops HTML comments


def test_probe_completions_extract_to_the_intended_code():
    task = ReferenceTask("svg", HAND_SVG)
    probes = {p.name: p for p in build_probes(task)}
    assert set(probes) == {"reference", "blank", "lookalike", "broken_copy", "injection"}
    assert extract_code("svg", probes["reference"].completion).code == HAND_SVG.strip()
    broken = extract_code("svg", probes["broken_copy"].completion)
    assert broken.note == "" and broken.code.endswith('<rect x="0" y="0"</svg>')  # not "repaired" away
    assert "Ignore previous instructions" in extract_code("svg", probes["injection"].completion).code
    assert palette(HAND_SVG) == ["#1e88e5", "#263238"]


def test_pixel_oracle_and_table_format():
    reference = Image.new("RGB", (20, 10), "white")
    reference.paste((0, 0, 0), (0, 0, 10, 10))
    assert critique_reward(pixel_oracle_critique("chart", reference, reference), "chart") == 1.0
    inverted = Image.new("RGB", (20, 10), "white")
    inverted.paste((0, 0, 0), (10, 0, 20, 10))
    assert critique_reward(pixel_oracle_critique("chart", reference, inverted), "chart") == 0.0
    text = probe_table({"blank": {"mse": 0.9, "teds": math.nan}}, title="t")
    assert text.splitlines() == ["**t**", "", "| probe | mse | teds |", "|---|---:|---:|", "| blank | 0.900 | - |"]
