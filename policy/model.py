"""`Qwen3VL`: vision tower + text decoder + LM head, and the HF-style `forward_logits` convenience.

Why a gather instead of `masked_scatter`: image features are placed into image-token positions with
a cumulative-sum gather that has static shapes, so one compiled program serves any arrangement of
image tokens in the batch (the k-th image token in row-major order receives the k-th real merged patch
feature, exactly transformers' `masked_scatter` order, whatever padding the vision bins hold).
DeepStack features are placed the same way and added after the first decoder layers.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from policy.config import Qwen3VLConfig
from policy.rope_index import get_rope_index
from policy.sharding import gather_weight
from policy.text import DecodeCache, Dense, KVCache, TextModel
from policy.vision import VisionInputs, VisionModel, pack_pixels, real_merged_rows, vision_metadata


def place_features(mask: jax.Array, features: jax.Array, row_start: jax.Array | None = None,
                   rows: jax.Array | None = None) -> jax.Array:
    """Dense [..., B, T, E] with features at the True entries of mask [B, T], zeros elsewhere.

    Without `row_start` the k-th True in row-major order takes feature k; with row_start [B], the j-th
    True of row b takes feature row_start[b] + j (rows may share features). Feature k is
    features[..., k, :], or features[..., rows[k], :] with `rows` (the real rows among padding).
    """
    if row_start is None:
        idx = jnp.cumsum(mask.reshape(-1)) - 1
    else:
        idx = (row_start[:, None] + jnp.cumsum(mask, axis=1) - 1).reshape(-1)
    flat = mask.reshape(-1)
    idx = jnp.clip(idx, 0, max(features.shape[-2] - 1, 0))
    if rows is not None:
        idx = jnp.take(rows, idx)
    gathered = jnp.take(features, idx, axis=-2)  # [..., B*T, E]
    gathered = jnp.where(flat[:, None], gathered, jnp.zeros((), gathered.dtype))
    return gathered.reshape(features.shape[:-2] + mask.shape + features.shape[-1:])


class Qwen3VL(nnx.Module):
    """Qwen3-VL (dense) for conditional generation."""

    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.visual = VisionModel(config, rngs=rngs)
        self.text = TextModel(config, rngs=rngs)
        t = config.text
        self.lm_head = None if config.tie_word_embeddings else Dense(
            (t.hidden_size,), (t.vocab_size,), ("embed",), ("vocab",), use_bias=False, dtype=config.compute_dtype,
            param_dtype=config.weight_dtype, std=t.initializer_range, rngs=rngs)

    # -- pieces the sampler / trainer can call separately -----------------------------------------
    def encode_images(self, pixel_values, meta: VisionInputs):
        """(merged [N/m^2, E], deepstack [n_ds, N/m^2, E]) for padded patches (see `vision_metadata`)."""
        return self.visual(pixel_values, meta)

    def embed(self, input_ids, image_features=None, deepstack=None, patch_start=None, feature_rows=None):
        """Token embeddings with image features placed at image tokens; dense DeepStack or None.

        patch_start [B] (optional): index among the real encoded patches of the first patch of row b's
        images, so rows that repeat a prompt (GRPO's G completions) share one encoding of its images.
        feature_rows (optional): the real rows of the features in order (`real_merged_rows`).
        """
        h = self.text.embed_tokens(input_ids)
        if image_features is None:
            return h, None
        mask = input_ids == self.config.image_token_id
        start = None if patch_start is None else patch_start // self.config.vision.spatial_merge_size**2
        h = jnp.where(mask[..., None], place_features(mask, image_features.astype(h.dtype), start, feature_rows), h)
        ds = (place_features(mask, deepstack.astype(h.dtype), start, feature_rows)
              if deepstack is not None and deepstack.shape[0] else None)
        return h, ds

    def logits(self, hidden):
        """float32 logits from final-normed hidden states."""
        if self.lm_head is None:
            table = gather_weight(self.text.embed[...].astype(self.config.compute_dtype), ("vocab", "embed"))
            return jnp.einsum("...e,ve->...v", hidden, table, preferred_element_type=jnp.float32)
        return self.lm_head(hidden, out_dtype=jnp.float32)

    def __call__(self, input_ids, positions, attention_mask=None, pixel_values=None, vision_inputs=None,
                 cache: KVCache | None = None, cache_index=None, return_hidden: bool = False, patch_start=None):
        """Logits [B,T,V] float32 (or final hidden if return_hidden) and the updated cache.

        input_ids [B,T]; positions [3,B,T] (from `get_rope_index`, or `k + rope_delta` when decoding);
        attention_mask [B,T] (1 real, 0 pad); pixel_values [N, C*T*P*P] with `vision_inputs` from
        `vision_metadata`; cache/cache_index [B]: write this chunk at per-row slots and attend over the
        cache (prefill and decode alike); patch_start [B]: see `embed` (each image encoded once however
        many rows show it).
        """
        if attention_mask is None:
            attention_mask = jnp.ones(input_ids.shape, jnp.int32)
        feats = ds = rows = None
        if pixel_values is not None:
            feats, ds = self.encode_images(pixel_values, vision_inputs)
            rows = real_merged_rows(vision_inputs.segment_ids, self.config.vision.spatial_merge_size**2)
        h, ds_dense = self.embed(input_ids, feats, ds, patch_start, rows)
        h, cache = self.text(h, positions, attention_mask, ds_dense, cache, cache_index)
        return (h if return_hidden else self.logits(h)), cache

    def decode(self, input_ids, positions, cache: DecodeCache, step):
        """The sampler's decode step: one text token per row (input_ids [B*G,1], positions [3,B*G,1]) written
        at generated slot `step` of `cache`. Returns (float32 logits [B*G, V], updated cache)."""
        h, cache = self.text.decode(self.text.embed_tokens(input_ids), positions, cache, step)
        return self.logits(h[:, 0]), cache


def init_model(config: Qwen3VLConfig, seed: int = 0) -> Qwen3VL:
    """Randomly initialised model (tests, training from scratch)."""
    return Qwen3VL(config, rngs=nnx.Rngs(seed))


def abstract_model(config: Qwen3VLConfig) -> Qwen3VL:
    """Shape-only model (no memory) for sharding plans and checkpoint loading."""
    return nnx.eval_shape(lambda: Qwen3VL(config, rngs=nnx.Rngs(0)))


@nnx.jit
def _forward(model, input_ids, positions, attention_mask, pixel_values, vision_inputs):
    logits, _ = model(input_ids, positions, attention_mask, pixel_values, vision_inputs)
    return logits


class ModelInputs(NamedTuple):
    """What `prepare_inputs` makes of token ids (all numpy, host side)."""

    input_ids: np.ndarray  # [B, T] int32
    attention_mask: np.ndarray  # [B, T] int32, 0 on padding
    positions: np.ndarray  # [3, B, T] M-RoPE position ids (temporal, height, width)
    rope_deltas: np.ndarray  # [B, 1] next position - sequence length, where decoding continues
    vision: VisionInputs | None  # the vision tower's metadata (numpy leaves), None without images


def prepare_inputs(config: Qwen3VLConfig, input_ids, attention_mask=None, image_grid_thw=None,
                   num_patches: int | None = None, encoded_grid_thw=None):
    """Host-side (numpy) positions and vision metadata for a batch, with consistency checks.

    image_grid_thw: every row's images in row order (for positions); encoded_grid_thw: the images the
    vision tower encodes, when rows share them (see `Qwen3VL.embed`'s patch_start); default: the same.
    """
    ids = np.asarray(input_ids)
    if ids.ndim == 1:
        ids = ids[None]
    mask = (np.ones(ids.shape, np.int32) if attention_mask is None
            else np.asarray(attention_mask, np.int32).reshape(ids.shape))
    m = config.vision.spatial_merge_size
    positions, deltas = get_rope_index(ids, image_grid_thw, mask, spatial_merge_size=m,
                                       image_token_id=config.image_token_id,
                                       vision_start_token_id=config.vision_start_token_id)
    meta = None
    if image_grid_thw is not None:
        grid = np.asarray(image_grid_thw).reshape(-1, 3)
        want = int(np.prod(grid, axis=1).sum()) // (m * m)
        have = int(((ids == config.image_token_id) & (mask > 0)).sum())
        if want != have:
            raise ValueError(f"{have} image tokens in input_ids but image_grid_thw implies {want}")
        encoded = grid if encoded_grid_thw is None else np.asarray(encoded_grid_thw).reshape(-1, 3)
        meta = vision_metadata(encoded, config, num_patches)
    return ModelInputs(ids.astype(np.int32), mask, positions, deltas, meta)


def forward_logits(model: Qwen3VL, input_ids, attention_mask=None, pixel_values=None, image_grid_thw=None):
    """HF-style convenience: numpy in, numpy float32 logits [B, T, V] out (jitted inside).

    Positions come from the host `get_rope_index` (padding-aware), so a left-padded row gets the
    same logits as the same row unpadded.
    """
    cfg = model.config
    if (pixel_values is None) != (image_grid_thw is None):
        raise ValueError("pixel_values and image_grid_thw must be given together")
    inputs = prepare_inputs(cfg, input_ids, attention_mask, image_grid_thw)
    pv = vision = None
    if pixel_values is not None:
        pv = np.asarray(pixel_values, np.float32)
        if pv.ndim != 2 or pv.shape[1] != cfg.vision.patch_dim:
            raise ValueError(f"pixel_values shape {pv.shape}, expected [patches, {cfg.vision.patch_dim}]")
        pv = jnp.asarray(pack_pixels(pv, image_grid_thw, cfg, num_patches=inputs.vision.segment_ids.shape[0]))
        vision = VisionInputs(*(jnp.asarray(x) for x in inputs.vision))
    logits = _forward(model, jnp.asarray(inputs.input_ids), jnp.asarray(inputs.positions),
                      jnp.asarray(inputs.attention_mask), pv, vision)
    return np.asarray(logits)
