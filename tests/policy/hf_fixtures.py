"""Tiny random `transformers` Qwen3-VL models and matching inputs for parity tests (no network).

Why perturb norms/biases: HF initialises LayerNorm/RMSNorm weights to 1 and biases to 0, which would
hide a swapped or dropped scale/bias in the port. Every parameter gets seeded noise instead.
"""
from __future__ import annotations

import numpy as np
import torch

IMG, VID, VSTART, VEND = 120, 121, 122, 123
VOCAB = 128

# Three deliberately different tiny configs (head_dim, heads vs kv heads, DeepStack, tying, widths).
CONFIGS = {
    "gqa_untied": dict(
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, mrope_section=[2, 1, 1]),
        vision=dict(depth=3, hidden_size=16, intermediate_size=32, num_heads=2, num_position_embeddings=16,
                    deepstack_visual_indexes=[0, 1]),
        tie=False),
    "mqa_tied": dict(
        text=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16, mrope_section=[4, 2, 2]),
        vision=dict(depth=2, hidden_size=16, intermediate_size=24, num_heads=1, num_position_embeddings=25,
                    deepstack_visual_indexes=[1]),
        tie=True),
    "mha_wide_unsorted_ds": dict(
        text=dict(hidden_size=40, intermediate_size=56, num_hidden_layers=3, num_attention_heads=3,
                  num_key_value_heads=3, head_dim=12, mrope_section=[2, 2, 2]),
        vision=dict(depth=3, hidden_size=24, intermediate_size=40, num_heads=2, num_position_embeddings=36,
                    deepstack_visual_indexes=[2, 0]),
        tie=False),
}


def hf_config(name: str):
    from transformers import Qwen3VLConfig

    spec = CONFIGS[name]
    t, v = dict(spec["text"]), dict(spec["vision"])
    section = t.pop("mrope_section")
    text = dict(vocab_size=VOCAB, rms_norm_eps=1e-6, max_position_embeddings=4096, initializer_range=0.1,
                rope_parameters=dict(rope_type="default", rope_theta=5_000_000.0, mrope_section=section,
                                     mrope_interleaved=True), **t)
    vision = dict(patch_size=4, temporal_patch_size=2, spatial_merge_size=2, in_channels=3,
                  out_hidden_size=t["hidden_size"], hidden_act="gelu_pytorch_tanh", initializer_range=0.1, **v)
    return Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=IMG, video_token_id=VID,
                         vision_start_token_id=VSTART, vision_end_token_id=VEND, tie_word_embeddings=spec["tie"])


def build_hf_model(name: str, seed: int = 0):
    """A float32 eval-mode `Qwen3VLForConditionalGeneration` with every parameter randomised."""
    from transformers import Qwen3VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(hf_config(name)).float().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bias"):
                p.normal_(0, 0.1)
            elif p.ndim == 1:  # LayerNorm / RMSNorm scales
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


def save_hf_model(name: str, path, seed: int = 0):
    model = build_hf_model(name, seed)
    model.save_pretrained(str(path))
    return model


def pixel_inputs(grids, patch_dim: int = 96, seed: int = 0):
    """Random pixel patches [sum(t*h*w), patch_dim] for `grids`, and grid_thw int64 [n, 3]."""
    grid = np.asarray(grids, np.int64).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((int(np.prod(grid, 1).sum()), patch_dim)).astype(np.float32), grid


def image_span(grid, merge: int = 2):
    """Tokens for one image: vision_start, t*h*w/merge^2 image tokens, vision_end."""
    n = int(np.prod(grid)) // merge**2
    return [VSTART] + [IMG] * n + [VEND]


def text_tokens(rng, n: int):
    return rng.integers(1, 100, size=n).tolist()


def left_pad(rows, pad_id: int = 0):
    """Left-pad token lists to one length; returns (ids int64 [B, T], attention_mask int64 [B, T])."""
    T = max(len(r) for r in rows)
    ids = np.full((len(rows), T), pad_id, np.int64)
    mask = np.zeros((len(rows), T), np.int64)
    for b, r in enumerate(rows):
        ids[b, T - len(r):] = r
        mask[b, T - len(r):] = 1
    return ids, mask


def hf_logits(model, ids, mask=None, pixel_values=None, grid=None):
    """float32 numpy logits from transformers (mm_token_type_ids built from image tokens)."""
    kw = dict(input_ids=torch.as_tensor(ids))
    if mask is not None:
        kw["attention_mask"] = torch.as_tensor(mask)
    if pixel_values is not None:
        kw.update(pixel_values=torch.as_tensor(pixel_values), image_grid_thw=torch.as_tensor(grid),
                  mm_token_type_ids=torch.as_tensor((np.asarray(ids) == IMG).astype(np.int64)))
    with torch.no_grad():
        return model(**kw).logits.float().numpy()


def rel_err(ours, ref, mask=None) -> float:
    """max |ours - ref| over real tokens divided by max |ref| (the logit scale)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    if mask is not None:
        keep = np.asarray(mask).astype(bool)
        ours, ref = ours[keep], ref[keep]
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-12))
