"""The Hugging Face <-> ours parameter key map: ONE declarative table plus small transforms.

Why one table: import (`load_pretrained`) and export (`save_pretrained`) both read `RULES`, so a key
or layout can never be fixed in one direction only (MaxText style). Templates use `{i}` for a
repeated block (decoder layer, vision block, DeepStack merger). When a group is scanned, our path
drops the `.{i}` part and the per-layer tensors are stacked on a new leading axis.

Our kernels are [in..., out...] (torch Linear is [out, in]); multi-dim kernels split heads so they
shard cleanly: q/k/v [E, H, D], o [H, D, E], vision qkv [E, 3, H, D], vision proj [H, D, E].
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from policy.config import Qwen3VLConfig

TEXT_LAYERS, VISION_BLOCKS, DEEPSTACK = "text_layers", "vision_blocks", "deepstack"


@dataclass(frozen=True)
class Rule:
    hf: str  # HF key template
    ours: str  # our flat state path template ('.'-joined)
    transform: str  # key of TO_OURS / TO_HF
    group: str | None = None  # which repeated block `{i}` ranges over
    n_in: int = 1  # leading kernel dims that are "input" dims (linear transform only)
    when: str | None = None  # config predicate name in PREDICATES


_V, _T = "model.visual", "model.language_model"

RULES: tuple[Rule, ...] = (
    # -- vision tower ----------------------------------------------------------------------------
    Rule(f"{_V}.patch_embed.proj.weight", "visual.patch_embed.kernel", "conv3d"),
    Rule(f"{_V}.patch_embed.proj.bias", "visual.patch_embed.bias", "same"),
    Rule(f"{_V}.pos_embed.weight", "visual.pos_embed", "same"),
    Rule(f"{_V}.blocks.{{i}}.norm1.weight", "visual.blocks.{i}.norm1.scale", "same", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.norm1.bias", "visual.blocks.{i}.norm1.bias", "same", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.norm2.weight", "visual.blocks.{i}.norm2.scale", "same", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.norm2.bias", "visual.blocks.{i}.norm2.bias", "same", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.attn.qkv.weight", "visual.blocks.{i}.attn.qkv.kernel", "linear", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.attn.qkv.bias", "visual.blocks.{i}.attn.qkv.bias", "flat", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.attn.proj.weight", "visual.blocks.{i}.attn.proj.kernel", "linear", VISION_BLOCKS, 2),
    Rule(f"{_V}.blocks.{{i}}.attn.proj.bias", "visual.blocks.{i}.attn.proj.bias", "same", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.mlp.linear_fc1.weight", "visual.blocks.{i}.mlp.fc1.kernel", "linear", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.mlp.linear_fc1.bias", "visual.blocks.{i}.mlp.fc1.bias", "same", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.mlp.linear_fc2.weight", "visual.blocks.{i}.mlp.fc2.kernel", "linear", VISION_BLOCKS),
    Rule(f"{_V}.blocks.{{i}}.mlp.linear_fc2.bias", "visual.blocks.{i}.mlp.fc2.bias", "same", VISION_BLOCKS),
    Rule(f"{_V}.merger.norm.weight", "visual.merger.norm.scale", "same"),
    Rule(f"{_V}.merger.norm.bias", "visual.merger.norm.bias", "same"),
    Rule(f"{_V}.merger.linear_fc1.weight", "visual.merger.fc1.kernel", "linear"),
    Rule(f"{_V}.merger.linear_fc1.bias", "visual.merger.fc1.bias", "same"),
    Rule(f"{_V}.merger.linear_fc2.weight", "visual.merger.fc2.kernel", "linear"),
    Rule(f"{_V}.merger.linear_fc2.bias", "visual.merger.fc2.bias", "same"),
    Rule(f"{_V}.deepstack_merger_list.{{i}}.norm.weight", "visual.deepstack_mergers.{i}.norm.scale", "same", DEEPSTACK),
    Rule(f"{_V}.deepstack_merger_list.{{i}}.norm.bias", "visual.deepstack_mergers.{i}.norm.bias", "same", DEEPSTACK),
    Rule(f"{_V}.deepstack_merger_list.{{i}}.linear_fc1.weight", "visual.deepstack_mergers.{i}.fc1.kernel", "linear",
         DEEPSTACK),
    Rule(f"{_V}.deepstack_merger_list.{{i}}.linear_fc1.bias", "visual.deepstack_mergers.{i}.fc1.bias", "same",
         DEEPSTACK),
    Rule(f"{_V}.deepstack_merger_list.{{i}}.linear_fc2.weight", "visual.deepstack_mergers.{i}.fc2.kernel", "linear",
         DEEPSTACK),
    Rule(f"{_V}.deepstack_merger_list.{{i}}.linear_fc2.bias", "visual.deepstack_mergers.{i}.fc2.bias", "same",
         DEEPSTACK),
    # -- text decoder ----------------------------------------------------------------------------
    Rule(f"{_T}.embed_tokens.weight", "text.embed", "same"),
    Rule(f"{_T}.layers.{{i}}.self_attn.q_proj.weight", "text.layers.{i}.attn.q.kernel", "linear", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.self_attn.k_proj.weight", "text.layers.{i}.attn.k.kernel", "linear", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.self_attn.v_proj.weight", "text.layers.{i}.attn.v.kernel", "linear", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.self_attn.o_proj.weight", "text.layers.{i}.attn.o.kernel", "linear", TEXT_LAYERS, 2),
    Rule(f"{_T}.layers.{{i}}.self_attn.q_proj.bias", "text.layers.{i}.attn.q.bias", "flat", TEXT_LAYERS,
         when="attention_bias"),
    Rule(f"{_T}.layers.{{i}}.self_attn.k_proj.bias", "text.layers.{i}.attn.k.bias", "flat", TEXT_LAYERS,
         when="attention_bias"),
    Rule(f"{_T}.layers.{{i}}.self_attn.v_proj.bias", "text.layers.{i}.attn.v.bias", "flat", TEXT_LAYERS,
         when="attention_bias"),
    Rule(f"{_T}.layers.{{i}}.self_attn.o_proj.bias", "text.layers.{i}.attn.o.bias", "same", TEXT_LAYERS,
         when="attention_bias"),
    Rule(f"{_T}.layers.{{i}}.self_attn.q_norm.weight", "text.layers.{i}.attn.q_norm.scale", "same", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.self_attn.k_norm.weight", "text.layers.{i}.attn.k_norm.scale", "same", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.mlp.gate_proj.weight", "text.layers.{i}.mlp.gate.kernel", "linear", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.mlp.up_proj.weight", "text.layers.{i}.mlp.up.kernel", "linear", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.mlp.down_proj.weight", "text.layers.{i}.mlp.down.kernel", "linear", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.input_layernorm.weight", "text.layers.{i}.input_norm.scale", "same", TEXT_LAYERS),
    Rule(f"{_T}.layers.{{i}}.post_attention_layernorm.weight", "text.layers.{i}.post_norm.scale", "same",
         TEXT_LAYERS),
    Rule(f"{_T}.norm.weight", "text.norm.scale", "same"),
    Rule("lm_head.weight", "lm_head.kernel", "linear", when="untied"),
)

# HF keys a checkpoint may carry that we knowingly drop (a tied head some exporters still write).
IGNORABLE = {"tied": ("lm_head.weight",)}

PREDICATES: dict[str, Callable[[Qwen3VLConfig], bool]] = {
    "attention_bias": lambda c: c.text.attention_bias,
    "untied": lambda c: not c.tie_word_embeddings,
}


def group_size(config: Qwen3VLConfig, group: str | None) -> int:
    return {None: 1, TEXT_LAYERS: config.text.num_hidden_layers, VISION_BLOCKS: config.vision.depth,
            DEEPSTACK: len(config.vision.deepstack_visual_indexes)}[group]


def stacked_groups(config: Qwen3VLConfig) -> frozenset[str]:
    """Groups whose per-layer tensors are stacked on a leading axis in our state."""
    return frozenset({TEXT_LAYERS} if config.scan_layers else ())


@dataclass(frozen=True)
class Entry:
    """One of our parameters and the HF tensor(s) it is made of (several when stacked)."""

    ours: str
    hf_keys: tuple[str, ...]
    rule: Rule
    stacked: bool


def entries(config: Qwen3VLConfig) -> Iterator[Entry]:
    stacked = stacked_groups(config)
    for r in RULES:
        if r.when and not PREDICATES[r.when](config):
            continue
        n = group_size(config, r.group)
        if r.group is None:
            yield Entry(r.ours, (r.hf,), r, False)
        elif r.group in stacked:
            yield Entry(r.ours.replace(".{i}", ""), tuple(r.hf.format(i=i) for i in range(n)), r, True)
        else:
            for i in range(n):
                yield Entry(r.ours.format(i=i), (r.hf.format(i=i),), r, False)


def ignorable_hf_keys(config: Qwen3VLConfig) -> set[str]:
    return set(IGNORABLE["tied"]) if config.tie_word_embeddings else set()


# ---------------------------------------------------------------------------------------------
# Transforms. to_ours(hf_array, our_shape, rule) and to_hf(our_array, hf_shape, rule); our_shape /
# hf_shape are per-layer (unstacked) shapes.
# ---------------------------------------------------------------------------------------------
def _linear_to_ours(a, shape, rule):
    return np.ascontiguousarray(a.T).reshape(shape)


def _linear_to_hf(a, hf_shape, rule):
    n_in = math.prod(a.shape[: rule.n_in])
    return np.ascontiguousarray(a.reshape(n_in, -1).T)


def _conv3d_to_ours(a, shape, rule):
    return np.ascontiguousarray(a.reshape(a.shape[0], -1).T)


def _conv3d_to_hf(a, hf_shape, rule):
    return np.ascontiguousarray(a.T).reshape(hf_shape)


TO_OURS: dict[str, Callable] = {
    "same": lambda a, shape, rule: a,
    "flat": lambda a, shape, rule: a.reshape(shape),
    "linear": _linear_to_ours,
    "conv3d": _conv3d_to_ours,
}
TO_HF: dict[str, Callable] = {
    "same": lambda a, hf_shape, rule: a,
    "flat": lambda a, hf_shape, rule: a.reshape(-1),
    "linear": _linear_to_hf,
    "conv3d": _conv3d_to_hf,
}


def hf_shape(rule: Rule, our_shape: tuple[int, ...], config: Qwen3VLConfig) -> tuple[int, ...]:
    """The HF tensor shape that corresponds to one (unstacked) parameter of ours."""
    if rule.transform == "same":
        return tuple(our_shape)
    if rule.transform == "flat":
        return (math.prod(our_shape),)
    if rule.transform == "linear":
        return (math.prod(our_shape[rule.n_in:]), math.prod(our_shape[: rule.n_in]))
    if rule.transform == "conv3d":
        v = config.vision
        return (our_shape[1], v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
    raise KeyError(rule.transform)


def stack_layers(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-layer tensors -> one [L, ...] tensor (scanned layers)."""
    return np.stack(arrays, axis=0)


def unstack_layers(array: np.ndarray) -> list[np.ndarray]:
    """[L, ...] -> per-layer tensors (export of scanned layers)."""
    return [array[i] for i in range(array.shape[0])]

