"""Float32 parity of the NNX Qwen3-VL port against transformers.Qwen3VLForConditionalGeneration.

Three tiny random configs (GQA/untied/unscanned, MQA/tied/scanned, MHA/wide/unsorted DeepStack/scanned
with remat), each saved with `save_pretrained` and read back with `load_pretrained`.
"""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from policy.config import Qwen3VLConfig
from policy.hf_io import load_pretrained
from policy.model import Qwen3VL, forward_logits, prepare_inputs
from policy.text import KVCache, mrope_tables
from policy.vision import VisionInputs, vision_metadata
from tests.policy import hf_fixtures as F

TOL = 1e-5  # max |diff| relative to the logit scale (achieved: <= 1e-6)
VARIANTS = {
    "gqa_untied": dict(scan_layers=False),
    "mqa_tied": dict(scan_layers=True),
    "mha_wide_unsorted_ds": dict(scan_layers=True, remat="full"),
}
# Every attention kernel path: "xla" is the cuDNN call shape; splash runs in Pallas interpret mode (slow).
IMPLS = ("reference", "xla", "splash")


@nnx.jit(donate_argnames=("cache",))
def decode_chunk(model: Qwen3VL, input_ids, positions, attention_mask, cache: KVCache, cache_index):
    """Jitted text-only chunk step through the general KV-cache path: (logits [B,C,V] fp32, new cache).

    Writes the chunk's keys/values at slots cache_index[b] .. +C of each row (the caller keeps
    cache_index + C <= cache.max_len) and attends to every valid slot up to each query's own slot.
    positions [3,B,C] are `rope_deltas + k` (k = count of real tokens before it in the row).
    """
    return model(input_ids, positions, attention_mask, cache=cache, cache_index=cache_index)


@pytest.fixture(scope="module", ids="-".join, params=[
    pytest.param((n, i), marks=[pytest.mark.slow] if i == "splash" else []) for n in VARIANTS for i in IMPLS])
def pair(request, tmp_path_factory):
    name, impl = request.param
    path = tmp_path_factory.mktemp(name)
    hf = F.save_hf_model(name, path)
    config, model = load_pretrained(path, attention_impl=impl, **VARIANTS[name])
    return name, hf, config, model


def _report(pair, case, err):
    print(f"[parity] {pair[0]} scan={pair[2].scan_layers} attention={pair[2].attention_impl} {case}: "
          f"rel max|diff| = {err:.2e}")
    assert err <= TOL, (pair[0], pair[2].attention_impl, case, err)


def test_text_only(pair):
    _, hf, _, model = pair
    rng = np.random.default_rng(1)
    ids = np.array([F.text_tokens(rng, 13), F.text_tokens(rng, 13)])
    _report(pair, "text_only", F.rel_err(forward_logits(model, ids), F.hf_logits(hf, ids)))


def test_one_image(pair):
    _, hf, _, model = pair
    rng = np.random.default_rng(2)
    pv, grid = F.pixel_inputs([[1, 4, 6]], seed=2)
    ids = np.array([F.text_tokens(rng, 3) + F.image_span(grid[0]) + F.text_tokens(rng, 5)])
    ours = forward_logits(model, ids, pixel_values=pv, image_grid_thw=grid)
    _report(pair, "one_image", F.rel_err(ours, F.hf_logits(hf, ids, pixel_values=pv, grid=grid)))


def test_two_images_of_different_sizes(pair):
    _, hf, _, model = pair
    rng = np.random.default_rng(3)
    pv, grid = F.pixel_inputs([[1, 4, 4], [1, 6, 4]], seed=3)
    ids = np.array([F.text_tokens(rng, 2) + F.image_span(grid[0]) + F.text_tokens(rng, 3)
                    + F.image_span(grid[1]) + F.text_tokens(rng, 2)])
    ours = forward_logits(model, ids, pixel_values=pv, image_grid_thw=grid)
    _report(pair, "two_images", F.rel_err(ours, F.hf_logits(hf, ids, pixel_values=pv, grid=grid)))


def _mixed_batch(seed=4):
    rng = np.random.default_rng(seed)
    pv, grid = F.pixel_inputs([[1, 4, 4], [1, 4, 6], [1, 4, 4]], seed=seed)
    rows = [F.text_tokens(rng, 2) + F.image_span(grid[0]) + F.text_tokens(rng, 3),
            F.text_tokens(rng, 21),
            F.text_tokens(rng, 1) + F.image_span(grid[1]) + F.text_tokens(rng, 1) + F.image_span(grid[2])
            + F.text_tokens(rng, 2)]
    ids, mask = F.left_pad(rows)
    return ids, mask, pv, grid


def test_left_padded_mixed_batch(pair):
    _, hf, _, model = pair
    ids, mask, pv, grid = _mixed_batch()
    assert (mask == 0).any(axis=1).sum() == 2  # two rows really are padded
    ours = forward_logits(model, ids, mask, pixel_values=pv, image_grid_thw=grid)
    ref = F.hf_logits(hf, ids, mask, pixel_values=pv, grid=grid)
    _report(pair, "left_padded_mixed", F.rel_err(ours, ref, mask))


def test_vision_tower_and_deepstack(pair):
    import torch

    _, hf, config, model = pair
    pv, grid = F.pixel_inputs([[1, 4, 6], [2, 4, 4]], seed=5)  # second "image" has two frames
    with torch.no_grad():
        out = hf.model.visual(torch.as_tensor(pv), grid_thw=torch.as_tensor(grid), return_dict=True)
    meta = VisionInputs(*(jnp.asarray(x) for x in vision_metadata(grid, config)))
    merged, ds = model.visual(jnp.asarray(pv), meta)
    ref = out.pooler_output.numpy()
    _report(pair, "vision_merger", F.rel_err(merged, ref))
    assert ds.shape[0] == len(out.deepstack_features) == len(config.vision.deepstack_visual_indexes)
    for j, feat in enumerate(out.deepstack_features):
        _report(pair, f"deepstack_{j}", F.rel_err(ds[j], feat.numpy()))
    if pair[0] != "gqa_untied":
        return  # the padding check below is layout-independent; one variant keeps the suite fast
    # Bucket padding: extra patches in their own segment change nothing for the real ones.
    n = pv.shape[0]
    meta_p = VisionInputs(*(jnp.asarray(x) for x in vision_metadata(grid, config, num_patches=n + 8)))
    pv_p = np.concatenate([pv, np.random.default_rng(0).standard_normal((8, pv.shape[1]), np.float32)])
    merged_p, ds_p = model.visual(jnp.asarray(pv_p), meta_p)
    np.testing.assert_allclose(np.asarray(merged_p[: n // 4]), np.asarray(merged), atol=1e-6)
    np.testing.assert_allclose(np.asarray(ds_p[:, : n // 4]), np.asarray(ds), atol=1e-6)


def test_kv_cache_prefill_then_decode_matches_full_forward(pair):
    """Prefill a left-padded image+text batch into a cache, decode 3 tokens, compare with one pass."""
    if pair[0] == "mha_wide_unsorted_ds":
        pytest.skip("cache path is layout-independent; the unscanned and scanned variants cover it")
    _, _, config, model = pair
    ids, mask, pv, grid = _mixed_batch(seed=6)
    B, T = ids.shape
    new = np.random.default_rng(7).integers(1, 100, size=(B, 3))
    full_ids = np.concatenate([ids, new], 1)
    full_mask = np.concatenate([mask, np.ones_like(new)], 1)
    want = forward_logits(model, full_ids, full_mask, pixel_values=pv, image_grid_thw=grid)

    ids32, mask32, positions, deltas, meta = prepare_inputs(config, ids, mask, grid)
    cache = KVCache.init(config, B, T + 4)
    meta = VisionInputs(*(jnp.asarray(x) for x in meta))
    prefill = nnx.jit(lambda m, *a: m(*a[:5], cache=a[5], cache_index=a[6]))
    logits, cache = prefill(model, jnp.asarray(ids32), jnp.asarray(positions), jnp.asarray(mask32), jnp.asarray(pv),
                            meta, cache, jnp.zeros((B,), jnp.int32))
    assert F.rel_err(logits, want[:, :T], mask) <= TOL
    n_valid = mask.sum(1)
    for s in range(3):
        pos = np.broadcast_to((n_valid + s + deltas[:, 0])[None, :, None], (3, B, 1)).astype(np.int32)
        step, cache = decode_chunk(model, jnp.asarray(new[:, s:s + 1], jnp.int32), jnp.asarray(pos),
                                   jnp.ones((B, 1), jnp.int32), cache, jnp.full((B,), T + s, jnp.int32))
        err = F.rel_err(step[:, 0], want[:, T + s])
        _report(pair, f"kv_decode_step{s}", err)


def test_scanned_equals_unscanned(tmp_path):
    F.save_hf_model("gqa_untied", tmp_path)
    _, a = load_pretrained(tmp_path, scan_layers=False)
    _, b = load_pretrained(tmp_path, scan_layers=True, remat="dots")
    ids, mask, pv, grid = _mixed_batch(seed=8)
    la = forward_logits(a, ids, mask, pixel_values=pv, image_grid_thw=grid)
    lb = forward_logits(b, ids, mask, pixel_values=pv, image_grid_thw=grid)
    assert F.rel_err(la, lb, mask) <= 1e-6


@pytest.mark.parametrize("name", list(VARIANTS))
def test_mrope_tables_match_transformers_rotary_embedding(name):
    """cos/sin of every (t, h, w) section against `Qwen3VLTextRotaryEmbedding`, at large positions too."""
    import torch
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding

    hf_config = F.hf_config(name)
    config = Qwen3VLConfig.from_hf(hf_config.to_dict())
    rng = np.random.default_rng(9)
    positions = rng.integers(0, 1024, size=(3, 2, 17)).astype(np.int64)  # t, h, w differ per token
    rotary = Qwen3VLTextRotaryEmbedding(hf_config.text_config)
    x = torch.zeros((2, 17, config.text.head_dim), dtype=torch.float32)
    with torch.no_grad():
        ref_cos, ref_sin = (t.numpy() for t in rotary(x, torch.as_tensor(positions)))
    pos = jnp.asarray(positions, jnp.int32)
    cos, sin = mrope_tables(pos, config, jnp.float32)
    # Same float32 angles; XLA's and torch's cos/sin of angles up to ~1e3 rad differ by <= 2e-6.
    np.testing.assert_allclose(np.asarray(cos), ref_cos, atol=4e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(sin), ref_sin, atol=4e-6, rtol=0)
    t, h, w = config.text.mrope_section  # a section off by one is far outside that tolerance
    shifted = config.replace(text=dataclasses.replace(config.text, mrope_section=(t + 1, h - 1, w)))
    assert np.abs(np.asarray(mrope_tables(pos, shifted, jnp.float32)[1]) - ref_sin).max() > 1e-3
