"""The GRPO objective: group-normalised advantages, clipped ratio, KL to a reference.

Pure functions of arrays, so the loss is tested against hand-computed numbers
and reused unchanged inside the sharded jitted update (rl/trainer.py).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
    clip_low: float = 0.2  # ratio floor 1 - clip_low
    clip_high: float = 0.28  # ratio ceiling 1 + clip_high ("clip-higher")
    kl_coef: float = 0.0  # 0 skips the reference forward entirely
    normalize_std: bool = True  # divide by the group's std (Dr.GRPO sets False)
    aggregation: str = "token_mean"  # or "sequence_mean"
    eps: float = 1e-6

    def __post_init__(self):
        if self.aggregation not in ("token_mean", "sequence_mean"):
            raise ValueError(f"aggregation must be token_mean or sequence_mean, got {self.aggregation!r}")


def group_advantages(rewards: jax.Array, group_size: int, *, normalize_std: bool = True,
                     eps: float = 1e-6) -> tuple[jax.Array, jax.Array]:
    """Advantages [N] for rewards [N] laid out prompt-major (N = prompts * group_size).

    Returns (advantages, valid): groups whose rewards are all equal carry no
    signal; their advantages are 0 and `valid` is 0 for their samples.
    """
    grouped = rewards.reshape(-1, group_size).astype(jnp.float32)
    mean = grouped.mean(axis=1, keepdims=True)
    std = grouped.std(axis=1, keepdims=True)
    valid = std > eps
    centred = grouped - mean
    advantages = jnp.where(valid, centred / (std + eps) if normalize_std else centred, 0.0)
    return advantages.reshape(-1), jnp.broadcast_to(valid, grouped.shape).reshape(-1).astype(jnp.float32)


def k3_kl(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """Per-token k3 estimator of KL(policy || reference): exp(r - p) - (r - p) - 1 >= 0."""
    delta = ref_logprobs - logprobs
    return jnp.exp(delta) - delta - 1.0


def grpo_loss(logprobs: jax.Array, old_logprobs: jax.Array, advantages: jax.Array, mask: jax.Array,
              config: GRPOConfig, ref_logprobs: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Scalar loss and metrics.

    logprobs/old_logprobs/ref_logprobs/mask: [N, T] over completion tokens (mask 1 on
    real tokens of rows that count); advantages: [N].
    """
    mask = mask.astype(jnp.float32)
    ratio = jnp.exp(logprobs - old_logprobs)
    adv = advantages[:, None]
    clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_low, 1.0 + config.clip_high)
    per_token = -jnp.minimum(ratio * adv, clipped_ratio * adv)
    kl = jnp.zeros_like(per_token)
    if config.kl_coef and ref_logprobs is not None:
        kl = k3_kl(logprobs, ref_logprobs)
        per_token = per_token + config.kl_coef * kl
    tokens = jnp.maximum(mask.sum(), 1.0)
    if config.aggregation == "token_mean":
        loss = (per_token * mask).sum() / tokens
    else:
        rows = mask.sum(axis=1)
        per_row = (per_token * mask).sum(axis=1) / jnp.maximum(rows, 1.0)
        loss = (per_row * (rows > 0)).sum() / jnp.maximum((rows > 0).sum(), 1.0)
    clipped = ((ratio < 1.0 - config.clip_low) & (adv < 0)) | ((ratio > 1.0 + config.clip_high) & (adv > 0))
    metrics = {
        "kl": (kl * mask).sum() / tokens,
        "clip_fraction": (clipped * mask).sum() / tokens,
        "ratio_mean": (ratio * mask).sum() / tokens,
    }
    return loss, metrics
