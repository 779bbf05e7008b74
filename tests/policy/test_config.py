"""Qwen3VLConfig: published presets, HF 4.57 and 5.x spellings, to_hf round trip, MoE refusal."""
import json

import pytest

from policy.config import Qwen3VLConfig, qwen3vl_4b

# Qwen/Qwen3-VL-4B-Instruct config.json as published (transformers 4.57 spelling).
HF_4B_457 = {
    "architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl",
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "tie_word_embeddings": True,
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "dtype": "bfloat16",
        "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2560,
        "initializer_range": 0.02, "intermediate_size": 9728, "max_position_embeddings": 262144,
        "model_type": "qwen3_vl_text", "num_attention_heads": 32, "num_hidden_layers": 36,
        "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
        "rope_theta": 5000000, "tie_word_embeddings": True, "use_cache": True, "vocab_size": 151936},
    "vision_config": {
        "deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_act": "gelu_pytorch_tanh",
        "hidden_size": 1024, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4096,
        "model_type": "qwen3_vl", "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": 2560,
        "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2},
}


def test_presets_match_published_values():
    c2, c4, c8, c32 = (Qwen3VLConfig.qwen3vl_2b(), Qwen3VLConfig.qwen3vl_4b(), Qwen3VLConfig.qwen3vl_8b(),
                       Qwen3VLConfig.qwen3vl_32b())
    assert (c2.text.hidden_size, c2.text.num_hidden_layers, c2.text.num_attention_heads, c2.tie_word_embeddings) == \
        (2048, 28, 16, True)
    assert (c4.text.hidden_size, c4.text.intermediate_size, c4.text.num_hidden_layers) == (2560, 9728, 36)
    assert (c8.text.hidden_size, c8.text.intermediate_size, c8.tie_word_embeddings) == (4096, 12288, False)
    assert (c32.text.hidden_size, c32.text.intermediate_size, c32.text.num_hidden_layers,
            c32.text.num_attention_heads) == (5120, 25600, 64, 64)
    for c in (c2, c4, c8, c32):
        assert c.text.vocab_size == 151936 and c.text.num_key_value_heads == 8 and c.text.head_dim == 128
        assert c.text.rope_theta == 5_000_000 and c.text.mrope_section == (24, 20, 20)
        assert c.vision.out_hidden_size == c.text.hidden_size and c.vision.patch_size == 16
        assert c.image_token_id == 151655 and c.vision_start_token_id == 151652
    assert c4.vision.deepstack_visual_indexes == (5, 11, 17) and c4.vision.depth == 24
    assert c8.vision.deepstack_visual_indexes == (8, 16, 24) and (c8.vision.depth, c8.vision.hidden_size) == (27, 1152)
    assert c8.vision.intermediate_size == 4304 and c32.vision.out_hidden_size == 5120


def test_from_hf_457_spelling_matches_preset(tmp_path):
    parsed = Qwen3VLConfig.from_hf(HF_4B_457)
    preset = qwen3vl_4b()
    assert parsed.text == preset.text and parsed.vision == preset.vision
    assert parsed.tie_word_embeddings and parsed.eos_token_id == 151645
    (tmp_path / "config.json").write_text(json.dumps(HF_4B_457))
    assert Qwen3VLConfig.from_hf(tmp_path) == parsed == Qwen3VLConfig.from_hf(tmp_path / "config.json")


def test_to_hf_is_accepted_by_transformers_and_round_trips():
    from transformers import Qwen3VLConfig as HFConfig

    for c in (Qwen3VLConfig.tiny(), Qwen3VLConfig.qwen3vl_8b()):
        d = c.to_hf()
        hf = HFConfig(**{k: v for k, v in d.items() if k not in ("architectures", "model_type")})
        assert hf.text_config.rope_parameters["mrope_section"] == list(c.text.mrope_section)
        assert hf.text_config.rope_parameters["rope_theta"] == c.text.rope_theta
        assert hf.vision_config.deepstack_visual_indexes == list(c.vision.deepstack_visual_indexes)
        assert Qwen3VLConfig.from_hf(d) == c
        assert Qwen3VLConfig.from_hf(hf.to_dict()).text == c.text  # 5.x spelling from transformers itself


def test_runtime_fields_and_validation():
    c = Qwen3VLConfig.tiny(dtype="bfloat16", scan_layers=True, remat="dots")
    assert c.compute_dtype.name == "bfloat16" and c.weight_dtype.name == "float32"
    assert Qwen3VLConfig.from_hf(c.to_hf(), scan_layers=True).scan_layers
    with pytest.raises(ValueError, match="remat"):
        Qwen3VLConfig.tiny(remat="sometimes")
    bad = json.loads(json.dumps(HF_4B_457))
    bad["text_config"]["rope_scaling"]["mrope_section"] = [24, 20, 19]
    with pytest.raises(ValueError, match="mrope_section"):
        Qwen3VLConfig.from_hf(bad)
    yarn = json.loads(json.dumps(HF_4B_457))
    yarn["text_config"]["rope_scaling"]["rope_type"] = "yarn"
    with pytest.raises(NotImplementedError, match="yarn"):
        Qwen3VLConfig.from_hf(yarn)


def test_moe_is_refused():
    moe = json.loads(json.dumps(HF_4B_457))
    moe["model_type"] = "qwen3_vl_moe"
    with pytest.raises(ValueError, match="MoE"):
        Qwen3VLConfig.from_hf(moe)
    moe = json.loads(json.dumps(HF_4B_457))
    moe["text_config"]["num_experts"] = 128
    with pytest.raises(ValueError, match="MoE"):
        Qwen3VLConfig.from_hf(moe)
