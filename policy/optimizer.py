"""AdamW with linear warmup and cosine decay, clipping and gradient accumulation.

One constructor for every trainer (Visual-ERM SFT, GRPO) so a config's
`optimizer` block means the same thing everywhere.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import optax

DEFAULTS = {
    "learning_rate": 1e-5,
    "warmup_steps": 0,
    "total_steps": 1000,
    "end_learning_rate_ratio": 0.1,
    "weight_decay": 0.0,
    "b1": 0.9,
    "b2": 0.999,
    "eps": 1e-8,
    "clip_norm": 1.0,  # 0 disables clipping
    "grad_accum_steps": 1,
}


def learning_rate_schedule(cfg: Mapping[str, Any]) -> optax.Schedule:
    peak = float(cfg["learning_rate"])
    warmup = int(cfg["warmup_steps"])
    total = max(int(cfg["total_steps"]), warmup + 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else peak, peak_value=peak, warmup_steps=warmup,
        decay_steps=total, end_value=peak * float(cfg["end_learning_rate_ratio"]),
    )


def _decay_mask(params):
    """Weight decay on matrices only: not on norms, biases or scalars."""
    return jax.tree.map(lambda x: getattr(x, "ndim", 0) >= 2, params)


def make_optimizer(cfg: Mapping[str, Any] | None = None, **overrides) -> optax.GradientTransformation:
    """`cfg` (an ml_collections ConfigDict or mapping) over DEFAULTS; steps count optimizer updates."""
    merged = dict(DEFAULTS)
    merged.update(dict(cfg or {}))
    merged.update(overrides)
    unknown = set(merged) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown optimizer settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    parts = []
    if merged["clip_norm"]:
        parts.append(optax.clip_by_global_norm(float(merged["clip_norm"])))
    parts.append(optax.adamw(
        learning_rate_schedule(merged), b1=float(merged["b1"]), b2=float(merged["b2"]),
        eps=float(merged["eps"]), weight_decay=float(merged["weight_decay"]), mask=_decay_mask,
    ))
    tx = optax.chain(*parts)
    if int(merged["grad_accum_steps"]) > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=int(merged["grad_accum_steps"]))
    return tx
