"""Qwen3-VL (dense) configuration: one dataclass tree, HF import/export, published presets.

Why a separate dataclass and not `transformers.Qwen3VLConfig`: the JAX side must stay hashable and
importable without torch, and it carries runtime choices (dtypes, scan, remat) HF does not know.
`from_hf` reads both transformers 4.57 (`rope_scaling` + `rope_theta`) and 5.x (`rope_parameters`)
spellings; `to_hf` writes the 5.x spelling that `transformers.Qwen3VLConfig` accepts.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp

REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
ATTENTION_IMPLS = ("auto", "splash", "cudnn", "xla", "reference")  # see policy.attention

# transformers 5.x `Qwen3VLTextConfig.default_theta`: used when a config names no rope theta.
_HF_DEFAULT_TEXT_THETA = 500_000.0
_HF_DEFAULT_VISION_THETA = 10_000.0
_HF_DEFAULT_MROPE_SECTION = (24, 20, 20)


@dataclass(frozen=True)
class VisionConfig:
    """The ViT tower (patch embed, blocks, merger, DeepStack mergers)."""

    depth: int = 27
    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_heads: int = 16
    in_channels: int = 3
    patch_size: int = 16
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    out_hidden_size: int = 4096
    num_position_embeddings: int = 2304
    deepstack_visual_indexes: tuple[int, ...] = (8, 16, 24)
    hidden_act: str = "gelu_pytorch_tanh"
    rope_theta: float = _HF_DEFAULT_VISION_THETA
    initializer_range: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch_dim(self) -> int:
        """Length of one flattened pixel patch: C * T * P * P (the Conv3d receptive field)."""
        return self.in_channels * self.temporal_patch_size * self.patch_size**2


@dataclass(frozen=True)
class TextConfig:
    """The Qwen3 decoder (RMSNorm, QK-norm, GQA, SwiGLU, interleaved M-RoPE)."""

    vocab_size: int = 151936
    hidden_size: int = 4096
    intermediate_size: int = 12288
    num_hidden_layers: int = 36
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 5_000_000.0
    mrope_section: tuple[int, int, int] = _HF_DEFAULT_MROPE_SECTION
    max_position_embeddings: int = 262144
    attention_bias: bool = False
    hidden_act: str = "silu"
    initializer_range: float = 0.02


@dataclass(frozen=True)
class Qwen3VLConfig:
    """Whole-model config plus runtime choices (dtypes, scanned layers, remat policy)."""

    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    image_token_id: int = 151655
    video_token_id: int = 151656
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 151643
    eos_token_id: int | tuple[int, ...] | None = 151645
    pad_token_id: int | None = None
    # Runtime choices (not part of the HF checkpoint).
    dtype: str = "float32"  # compute dtype of activations and matmuls
    param_dtype: str = "float32"  # storage dtype of parameters
    scan_layers: bool = False  # one compiled decoder-layer body via lax.scan over stacked weights
    remat: str = "none"  # one of REMAT_POLICIES
    attention_impl: str = "auto"  # policy.attention.IMPLEMENTATIONS: auto = splash on TPU, cudnn on GPU, else reference
    # Vision attention bins: patches per bin, each bin attended alone (policy.image_processor.patch_layout);
    # 0: one bin per call. Runs set it to their largest image's patch count (TrainingRun.load).
    vision_bin: int = 0

    def __post_init__(self):
        t, v = self.text, self.vision
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat={self.remat!r}; expected one of {REMAT_POLICIES}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention_impl={self.attention_impl!r}; expected one of {ATTENTION_IMPLS}")
        if t.num_attention_heads % t.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if sum(t.mrope_section) * 2 != t.head_dim:
            raise ValueError(f"mrope_section {t.mrope_section} must sum to head_dim/2 = {t.head_dim // 2}")
        if v.hidden_size % v.num_heads or (v.head_dim // 2) % 2:
            raise ValueError("vision head_dim must be divisible by 4 (axial 2-D rope)")
        if v.out_hidden_size != t.hidden_size:
            raise ValueError("vision.out_hidden_size must equal text.hidden_size")
        if any(i < 0 or i >= v.depth for i in v.deepstack_visual_indexes):
            raise ValueError("deepstack_visual_indexes must lie in [0, vision.depth)")
        if len(v.deepstack_visual_indexes) > t.num_hidden_layers:
            raise ValueError("more DeepStack levels than decoder layers")
        if self.vision_bin < 0 or self.vision_bin % v.spatial_merge_size**2:
            raise ValueError(f"vision_bin={self.vision_bin} must be a non-negative multiple of spatial_merge_size**2")
        side = int(v.num_position_embeddings**0.5)
        if side * side != v.num_position_embeddings:
            raise ValueError("num_position_embeddings must be a perfect square")
        jnp.dtype(self.dtype), jnp.dtype(self.param_dtype)  # validate names early

    # -- convenience ---------------------------------------------------------------------------
    @property
    def compute_dtype(self):
        return jnp.dtype(self.dtype)

    @property
    def weight_dtype(self):
        return jnp.dtype(self.param_dtype)

    def replace(self, **kw) -> Qwen3VLConfig:
        return dataclasses.replace(self, **kw)

    # -- Hugging Face interop ------------------------------------------------------------------
    @classmethod
    def from_hf(cls, path_or_dict: str | os.PathLike | dict, **runtime) -> Qwen3VLConfig:
        """Read a HF `config.json` (dir, file or dict); `runtime` sets dtype/scan_layers/remat."""
        if isinstance(path_or_dict, dict):
            d = path_or_dict
        else:
            p = os.fspath(path_or_dict)
            if os.path.isdir(p):
                p = os.path.join(p, "config.json")
            with open(p) as f:
                d = json.load(f)
        model_type = d.get("model_type", "qwen3_vl")
        tc, vc = dict(d.get("text_config") or {}), dict(d.get("vision_config") or {})
        if "moe" in str(model_type) or any(k in tc for k in ("num_experts", "moe_intermediate_size")):
            raise ValueError(f"MoE Qwen3-VL configs (model_type={model_type!r}) are not supported; dense only")
        if model_type not in ("qwen3_vl",):
            raise ValueError(f"expected model_type 'qwen3_vl', got {model_type!r}")
        text = _text_from_hf(tc)
        vision = _vision_from_hf(vc)
        tie = d.get("tie_word_embeddings", tc.get("tie_word_embeddings", False))
        top = {k: d[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                 "vision_end_token_id") if k in d}
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):  # absent -> None, never invented
            v = d.get(k, tc.get(k))
            top[k] = tuple(v) if isinstance(v, list) else v
        return cls(text=text, vision=vision, tie_word_embeddings=bool(tie), **top, **runtime)

    def to_hf(self) -> dict[str, Any]:
        """A dict `transformers.Qwen3VLConfig(**d)` accepts (5.x spelling)."""
        t, v = self.text, self.vision
        text = dict(
            model_type="qwen3_vl_text", vocab_size=t.vocab_size, hidden_size=t.hidden_size,
            intermediate_size=t.intermediate_size, num_hidden_layers=t.num_hidden_layers,
            num_attention_heads=t.num_attention_heads, num_key_value_heads=t.num_key_value_heads,
            head_dim=t.head_dim, hidden_act=t.hidden_act, max_position_embeddings=t.max_position_embeddings,
            initializer_range=t.initializer_range, rms_norm_eps=t.rms_norm_eps, use_cache=True,
            attention_bias=t.attention_bias, attention_dropout=0.0,
            rope_parameters=dict(rope_type="default", rope_theta=float(t.rope_theta),
                                 mrope_section=list(t.mrope_section), mrope_interleaved=True),
        )
        vision = dict(
            model_type="qwen3_vl_vision", depth=v.depth, hidden_size=v.hidden_size, hidden_act=v.hidden_act,
            intermediate_size=v.intermediate_size, num_heads=v.num_heads, in_channels=v.in_channels,
            patch_size=v.patch_size, spatial_merge_size=v.spatial_merge_size,
            temporal_patch_size=v.temporal_patch_size, out_hidden_size=v.out_hidden_size,
            num_position_embeddings=v.num_position_embeddings,
            deepstack_visual_indexes=list(v.deepstack_visual_indexes), initializer_range=v.initializer_range,
            rope_parameters=dict(rope_type="axial", rope_theta=float(v.rope_theta)),
        )
        out = dict(
            architectures=["Qwen3VLForConditionalGeneration"], model_type="qwen3_vl",
            text_config=text, vision_config=vision, image_token_id=self.image_token_id,
            video_token_id=self.video_token_id, vision_start_token_id=self.vision_start_token_id,
            vision_end_token_id=self.vision_end_token_id, tie_word_embeddings=self.tie_word_embeddings,
            dtype=self.param_dtype,
        )
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            val = getattr(self, k)
            if val is not None:
                out[k] = list(val) if isinstance(val, tuple) else val
        return out

    def generation_config(self) -> dict[str, Any]:
        """Minimal `generation_config.json` content (token ids only; sampling knobs are the Sampler's)."""
        out = {}
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            val = getattr(self, k)
            if val is not None:
                out[k] = list(val) if isinstance(val, tuple) else val
        return out

    # -- presets -------------------------------------------------------------------------------
    @classmethod
    def tiny(cls, **kw) -> Qwen3VLConfig:
        """A few-thousand-parameter model for CPU tests (small vocab, 2+2 layers, DeepStack on)."""
        text = TextConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, rope_theta=5_000_000.0,
                          mrope_section=(2, 1, 1), max_position_embeddings=4096)
        vision = VisionConfig(depth=3, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=4,
                              temporal_patch_size=2, spatial_merge_size=2, out_hidden_size=32,
                              num_position_embeddings=16, deepstack_visual_indexes=(0, 1))
        base = dict(text=text, vision=vision, image_token_id=120, video_token_id=121,
                    vision_start_token_id=122, vision_end_token_id=123, tie_word_embeddings=False,
                    bos_token_id=None, eos_token_id=124, pad_token_id=0)
        base.update(kw)
        return cls(**base)

    @classmethod
    def qwen3vl_2b(cls, **kw) -> Qwen3VLConfig:
        """Qwen/Qwen3-VL-2B-Instruct."""
        return cls(text=_released_text(2048, 6144, 28, 16), vision=_small_vit(2048), tie_word_embeddings=True, **kw)

    @classmethod
    def qwen3vl_4b(cls, **kw) -> Qwen3VLConfig:
        """Qwen/Qwen3-VL-4B-Instruct."""
        return cls(text=_released_text(2560, 9728, 36, 32), vision=_small_vit(2560), tie_word_embeddings=True, **kw)

    @classmethod
    def qwen3vl_8b(cls, **kw) -> Qwen3VLConfig:
        """Qwen/Qwen3-VL-8B-Instruct."""
        return cls(text=_released_text(4096, 12288, 36, 32), vision=_large_vit(4096), tie_word_embeddings=False, **kw)

    @classmethod
    def qwen3vl_32b(cls, **kw) -> Qwen3VLConfig:
        """Qwen/Qwen3-VL-32B-Instruct."""
        return cls(text=_released_text(5120, 25600, 64, 64), vision=_large_vit(5120), tie_word_embeddings=False, **kw)


def _released_text(hidden, inter, layers, heads) -> TextConfig:
    return TextConfig(vocab_size=151936, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
                      rope_theta=5_000_000.0, mrope_section=(24, 20, 20), max_position_embeddings=262144)


def _small_vit(out) -> VisionConfig:  # 2B / 4B tower
    return VisionConfig(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=out,
                        deepstack_visual_indexes=(5, 11, 17))


def _large_vit(out) -> VisionConfig:  # 8B / 32B tower
    return VisionConfig(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=out,
                        deepstack_visual_indexes=(8, 16, 24))


def _text_from_hf(tc: dict) -> TextConfig:
    rp = tc.get("rope_parameters")
    rs = tc.get("rope_scaling")
    rope = dict(rs or {})
    rope.update(rp or {})
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "mrope"):
        raise NotImplementedError(f"text rope_type {rope_type!r}: only the default (unscaled) M-RoPE is ported")
    theta = rope.get("rope_theta", tc.get("rope_theta", _HF_DEFAULT_TEXT_THETA))
    section = tuple(int(x) for x in rope.get("mrope_section", _HF_DEFAULT_MROPE_SECTION))
    heads = tc.get("num_attention_heads", 32)
    hidden = tc.get("hidden_size", 4096)
    kv = tc.get("num_key_value_heads") or heads
    defaults = TextConfig()
    return TextConfig(
        vocab_size=tc.get("vocab_size", defaults.vocab_size), hidden_size=hidden,
        intermediate_size=tc.get("intermediate_size", 22016), num_hidden_layers=tc.get("num_hidden_layers", 32),
        num_attention_heads=heads, num_key_value_heads=kv, head_dim=tc.get("head_dim") or 128,
        rms_norm_eps=tc.get("rms_norm_eps", 1e-6), rope_theta=float(theta), mrope_section=section,
        max_position_embeddings=tc.get("max_position_embeddings", 128000),
        attention_bias=bool(tc.get("attention_bias", False)), hidden_act=tc.get("hidden_act", "silu"),
        initializer_range=tc.get("initializer_range", 0.02),
    )


def _vision_from_hf(vc: dict) -> VisionConfig:
    d = VisionConfig()
    rp = vc.get("rope_parameters") or {}
    def get(k):
        return vc.get(k, getattr(d, k))

    ps, tps = get("patch_size"), get("temporal_patch_size")
    if isinstance(ps, (list, tuple)) or isinstance(tps, (list, tuple)):
        raise NotImplementedError("non-square / list patch sizes are not used by released Qwen3-VL")
    return VisionConfig(
        depth=vc.get("depth", vc.get("num_hidden_layers", d.depth)), hidden_size=get("hidden_size"),
        intermediate_size=get("intermediate_size"),
        num_heads=vc.get("num_heads", vc.get("num_attention_heads", d.num_heads)),
        in_channels=get("in_channels"), patch_size=ps, temporal_patch_size=tps,
        spatial_merge_size=get("spatial_merge_size"), out_hidden_size=vc.get("out_hidden_size", 3584),
        num_position_embeddings=get("num_position_embeddings"),
        deepstack_visual_indexes=tuple(int(i) for i in get("deepstack_visual_indexes")),
        hidden_act=get("hidden_act"), rope_theta=float(rp.get("rope_theta", _HF_DEFAULT_VISION_THETA)),
        initializer_range=get("initializer_range"),
    )


def tiny(**kw) -> Qwen3VLConfig:
    return Qwen3VLConfig.tiny(**kw)


def qwen3vl_2b(**kw) -> Qwen3VLConfig:
    return Qwen3VLConfig.qwen3vl_2b(**kw)


def qwen3vl_4b(**kw) -> Qwen3VLConfig:
    return Qwen3VLConfig.qwen3vl_4b(**kw)


def qwen3vl_8b(**kw) -> Qwen3VLConfig:
    return Qwen3VLConfig.qwen3vl_8b(**kw)


def qwen3vl_32b(**kw) -> Qwen3VLConfig:
    return Qwen3VLConfig.qwen3vl_32b(**kw)


def runtime_options(model_block) -> dict:
    """`load_pretrained` keywords from a config's `model` block (an ml-collections ConfigDict or dict).

    `dtype` is the compute dtype, `param_dtype` the storage dtype of the trainable (master) weights:
    fp32 masters with bf16 compute keep small updates (lr 1e-6) that bf16 storage would round away.
    """
    return dict(dtype=jnp.dtype(model_block["dtype"]), param_dtype=jnp.dtype(model_block["param_dtype"]),
                scan_layers=bool(model_block["scan_layers"]), remat=str(model_block["remat"]))
