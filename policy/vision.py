"""Qwen3-VL vision tower in Flax NNX: patch embed, interpolated learned positions, 2-D RoPE, blocks,
patch merger and DeepStack mergers.

Why host metadata: everything that depends on the *values* of `grid_thw` (bilinear taps into the
position table, per-patch (h, w) rope coordinates, which image each patch belongs to, where each
patch sits in the padded batch) is computed on the host with numpy by `vision_metadata`. The jitted
tower then only needs the static total patch count, so images of any sizes (bucketed to one padded
patch count) reuse one compiled program.

Why bins: patches are packed into bins of `config.vision_bin` patches holding whole images
(`policy.image_processor.patch_layout`), and attention runs per bin, batched over bins, with segment
ids inside a bin (`policy.attention.segment_attention`): FLOPs grow with the number of images, not its
square, and bins split over the patch mesh axes, so a chip attends only within its own bins (no key
all-gather when the bins divide the chips). `real_merged_rows` lists the merged rows of real patches in
order, so the k-th image token takes the k-th real merged row whatever padding the bins hold.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from policy.attention import segment_attention
from policy.config import Qwen3VLConfig
from policy.image_processor import frame_sizes, pack_patches, patch_layout
from policy.sharding import constrain
from policy.text import Dense, maybe_remat, rotate_half

_ACTS = {
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "silu": jax.nn.silu,
}


class VisionInputs(NamedTuple):
    """Host-computed per-patch metadata (all numpy / arrays with leading dim = padded patch count)."""

    pos_idx: np.ndarray  # [N, 4] int32 taps into the flattened learned position table
    pos_w: np.ndarray  # [N, 4] float32 bilinear weights (0 for padding)
    rope_hw: np.ndarray  # [N, 2] int32 (row, col) of each patch inside its image
    segment_ids: np.ndarray  # [N] int32 frame id per patch; -1 for padding (patches laid out in bins)


def _axis_taps(index: np.ndarray, size: np.ndarray, side: int):
    """Bilinear (align_corners=True) taps/weights along one axis, float32 like transformers."""
    src = index.astype(np.float32) * np.float32(side - 1) / np.maximum(size - 1, 1).astype(np.float32)
    floor = np.floor(src)
    offsets = np.arange(2)
    taps = np.clip(floor.astype(np.int64)[:, None] + offsets, 0, side - 1)
    dist = np.abs(src[:, None] - floor[:, None] - offsets.astype(np.float32)).astype(np.float32)
    return taps, np.maximum(np.float32(1) - dist, np.float32(0)).astype(np.float32)


def vision_metadata(grid_thw, config: Qwen3VLConfig, num_patches: int | None = None) -> VisionInputs:
    """Per-patch metadata for images/frames `grid_thw` [n, 3], laid out by `patch_layout` with the
    config's `vision_bin`, padded to `num_patches` if given (else to the bins used).

    Patch order is the processor's: per image, per frame, spatial-merge blocks row-major, and inside a
    block its m x m patches row-major (transformers `get_vision_position_ids`).
    """
    v = config.vision
    m, side = v.spatial_merge_size, int(v.num_position_embeddings**0.5)
    grid = np.asarray(grid_thw, np.int64).reshape(-1, 3)
    idx, wts, hw, seg = [], [], [], []
    frame = 0
    for t, h, w in grid.tolist():
        if h % m or w % m:
            raise ValueError(f"grid {(t, h, w)} not divisible by spatial_merge_size {m}")
        within = np.arange(h * w)
        in_col, in_row = within % m, (within // m) % m
        bw = w // m
        block_col, block_row = (within // (m * m)) % bw, within // (m * m * bw)
        row, col = block_row * m + in_row, block_col * m + in_col
        ht, hw_ = _axis_taps(row, np.full_like(row, h), side)
        wt, ww = _axis_taps(col, np.full_like(col, w), side)
        taps = (ht[:, :, None] * side + wt[:, None, :]).reshape(-1, 4)
        weights = (hw_[:, :, None] * ww[:, None, :]).reshape(-1, 4)
        for _ in range(t):
            idx.append(taps)
            wts.append(weights)
            hw.append(np.stack([row, col], -1))
            seg.append(np.full(h * w, frame))
            frame += 1
    dest, total = patch_layout(frame_sizes(grid), config.vision_bin, num_patches=num_patches)
    if total % (m * m):
        raise ValueError(f"num_patches={total} must be a multiple of spatial_merge_size**2={m * m}")

    def place(xs, shape, dt, fill):
        out = np.full((total,) + shape, fill, dt)
        if xs:
            out[dest] = np.concatenate([np.asarray(x, dt) for x in xs], axis=0)
        return out

    return VisionInputs(place(idx, (4,), np.int32, 0), place(wts, (4,), np.float32, 0.0),
                        place(hw, (2,), np.int32, 0), place(seg, (), np.int32, -1))


def pack_pixels(pixel_values, grid_thw, config: Qwen3VLConfig, *, num_patches: int | None = None,
                patch_buckets=None) -> np.ndarray:
    """pixel_values [sum patches, D] of images `grid_thw` laid out as `vision_metadata` lays out their
    metadata (the config's bins), padded to `num_patches`, or the smallest of `patch_buckets` that holds them."""
    return pack_patches(pixel_values, frame_sizes(grid_thw), config.vision_bin, num_patches=num_patches,
                        patch_buckets=patch_buckets)


def real_merged_rows(segment_ids, merge_unit: int):
    """[N/m^2] merged-row indices, the rows of real patches first in order (then padding rows): row k of
    the k-th image token, whatever padding the vision bins hold between images. Traceable (jit)."""
    return jnp.argsort(segment_ids[::merge_unit] < 0, stable=True)


class LayerNorm(nnx.Module):
    """torch.nn.LayerNorm(eps) with affine weight/bias; statistics in float32."""

    def __init__(self, dim: int, eps: float, *, param_dtype, name="vision_embed"):
        self.eps = eps
        self.scale = nnx.Param(jnp.ones((dim,), param_dtype), logical_axes=(name,))
        self.bias = nnx.Param(jnp.zeros((dim,), param_dtype), logical_axes=(name,))

    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        mu = jnp.mean(x32, -1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mu), -1, keepdims=True)
        y = (x32 - mu) * jax.lax.rsqrt(var + self.eps)
        y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
        return y.astype(x.dtype)


def _dense_kw(config: Qwen3VLConfig, rngs):
    return dict(dtype=config.compute_dtype, param_dtype=config.weight_dtype, std=config.vision.initializer_range,
                rngs=rngs, use_bias=True)


class VisionAttention(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        v = config.vision
        E, H, D = v.hidden_size, v.num_heads, v.head_dim
        kw = _dense_kw(config, rngs)
        self.qkv = Dense((E,), (3, H, D), ("vision_embed",), ("qkv", "vision_heads", "vision_head_dim"), **kw)
        self.proj = Dense((H, D), (E,), ("vision_heads", "vision_head_dim"), ("vision_embed",), **kw)
        self.scale = D**-0.5
        self.impl = config.attention_impl

    def __call__(self, x, cos, sin, segment_ids):
        """x [N, E]; segment_ids [N/L, L] (bins of L patches): attention within each bin's segments."""
        qkv = self.qkv(x)  # [N, 3, H, D]
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        c, s = cos[:, None, :], sin[:, None, :]
        q32, k32 = q.astype(jnp.float32), k.astype(jnp.float32)
        q = (q32 * c + rotate_half(q32) * s).astype(q.dtype)
        k = (k32 * c + rotate_half(k32) * s).astype(k.dtype)
        bins = segment_ids.shape
        q, k, v = (t.reshape(bins + t.shape[1:]) for t in (q, k, v))
        out = segment_attention(q, k, v, segment_ids, scale=self.scale, impl=self.impl)
        return self.proj(out.reshape(x.shape[:1] + out.shape[2:]))


class VisionMLP(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        v = config.vision
        if v.hidden_act not in _ACTS:
            raise NotImplementedError(f"vision hidden_act {v.hidden_act!r} not ported")
        self.act = v.hidden_act
        kw = _dense_kw(config, rngs)
        self.fc1 = Dense((v.hidden_size,), (v.intermediate_size,), ("vision_embed",), ("vision_mlp",), **kw)
        self.fc2 = Dense((v.intermediate_size,), (v.hidden_size,), ("vision_mlp",), ("vision_embed",), **kw)

    def __call__(self, x):
        return self.fc2(_ACTS[self.act](self.fc1(x)))


class VisionBlock(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        E = config.vision.hidden_size
        self.norm1 = LayerNorm(E, 1e-6, param_dtype=config.weight_dtype)
        self.norm2 = LayerNorm(E, 1e-6, param_dtype=config.weight_dtype)
        self.attn = VisionAttention(config, rngs=rngs)
        self.mlp = VisionMLP(config, rngs=rngs)

    def __call__(self, x, cos, sin, segment_ids):
        x = x + self.attn(self.norm1(x), cos, sin, segment_ids)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nnx.Module):
    """LayerNorm -> group m*m neighbours -> Linear -> exact GELU -> Linear.

    `postshuffle=True` (DeepStack mergers) normalises after grouping (over m*m*E), the final merger
    before grouping (over E), as in transformers `Qwen3VLVisionPatchMerger`.
    """

    def __init__(self, config: Qwen3VLConfig, postshuffle: bool, *, rngs: nnx.Rngs):
        v = config.vision
        self.unit = v.spatial_merge_size**2
        self.postshuffle = postshuffle
        M = v.hidden_size * self.unit
        self.norm = LayerNorm(M if postshuffle else v.hidden_size, 1e-6, param_dtype=config.weight_dtype,
                              name="vision_merged" if postshuffle else "vision_embed")
        kw = _dense_kw(config, rngs)
        self.fc1 = Dense((M,), (M,), ("vision_merged",), ("vision_mlp",), **kw)
        self.fc2 = Dense((M,), (v.out_hidden_size,), ("vision_mlp",), ("embed",), **kw)

    def __call__(self, x):
        N, E = x.shape
        if self.postshuffle:
            x = self.norm(x.reshape(N // self.unit, E * self.unit))
        else:
            x = self.norm(x).reshape(N // self.unit, E * self.unit)
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class VisionModel(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        v = config.vision
        self.config = config
        self.patch_embed = Dense((v.patch_dim,), (v.hidden_size,), ("vision_patch",), ("vision_embed",),
                                 **_dense_kw(config, rngs))
        self.pos_embed = nnx.Param(
            (v.initializer_range * jax.random.normal(rngs.params(), (v.num_position_embeddings, v.hidden_size)))
            .astype(config.weight_dtype), logical_axes=("vision_pos", "vision_embed"))
        self.blocks = nnx.List([VisionBlock(config, rngs=rngs) for _ in range(v.depth)])
        self.merger = PatchMerger(config, postshuffle=False, rngs=rngs)
        self.deepstack_mergers = nnx.List(
            [PatchMerger(config, postshuffle=True, rngs=rngs) for _ in v.deepstack_visual_indexes])

    def rope_tables(self, rope_hw):
        """cos/sin [N, head_dim] of the axial 2-D rope: [h freqs, w freqs] repeated twice."""
        v = self.config.vision
        sd = v.head_dim // 2
        inv = 1.0 / (np.float32(v.rope_theta) ** (np.arange(0, sd, 2, dtype=np.float32) / np.float32(sd)))
        f = rope_hw.astype(jnp.float32)[..., None] * jnp.asarray(inv)  # [N, 2, sd/2]
        f = jnp.concatenate([f[:, 0], f[:, 1]], axis=-1)
        f = jnp.concatenate([f, f], axis=-1)
        return jnp.cos(f), jnp.sin(f)

    def __call__(self, pixel_values, meta: VisionInputs):
        """pixel_values [N, C*T*P*P] -> (merged [N/m^2, out], deepstack [n_ds, N/m^2, out]), one row per m^2
        patches in the patches' layout (padding rows between images; `real_merged_rows` finds the real ones)."""
        cfg = self.config
        dtype = cfg.compute_dtype
        x = self.patch_embed(pixel_values.astype(dtype))
        table = self.pos_embed[...].astype(jnp.float32)
        pos = jnp.sum(jnp.take(table, meta.pos_idx, axis=0) * meta.pos_w[..., None].astype(jnp.float32), axis=1)
        x = x + pos.astype(dtype)
        x = constrain(x, ("patches", None))
        cos, sin = self.rope_tables(meta.rope_hw)
        seg = self.bins(meta.segment_ids)
        feats = []
        for i, blk in enumerate(self.blocks):
            graphdef, st = nnx.split(blk)
            run = maybe_remat(lambda st, x, g=graphdef: nnx.merge(g, st)(x, cos, sin, seg), cfg.remat)
            x = constrain(run(st, x), ("patches", None))
            if i in cfg.vision.deepstack_visual_indexes:
                j = cfg.vision.deepstack_visual_indexes.index(i)
                feats.append(self.deepstack_mergers[j](x))
        merged = self.merger(x)
        ds = jnp.stack(feats) if feats else jnp.zeros((0,) + merged.shape, merged.dtype)
        return merged, ds

    def bins(self, segment_ids):
        """segment_ids [N] -> [N/L, L]: the attention bins of `config.vision_bin` patches (one bin if 0)."""
        (n,) = segment_ids.shape
        size = self.config.vision_bin or max(n, 1)
        if n % size:
            raise ValueError(f"{n} padded patches are not whole vision bins of {size} patches (lay them out with "
                             "policy.vision.pack_pixels / vision_metadata)")
        return constrain(segment_ids.reshape(n // size, size), ("patches", "patches"))
