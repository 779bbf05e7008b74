"""The GRPO objective: group-normalised advantages, clipped ratio, KL to a reference.

Pure functions of arrays, so the loss is tested against hand-computed numbers
and reused unchanged inside the sharded jitted update (rl/trainer.py).
One `--config.grpo.*` block configures GRPO: `GRPOConfig.from_block` splits it into the
loss's settings (`GRPOLoss`) and the trainer's per-rollout loop settings (`GRPOLoop`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Loss aggregations: how per-token losses become one scalar.
#   token_mean: sum over every counted token / number of counted tokens (DAPO, verl "token-mean").
#   sequence_mean: mean over rows of each row's token mean (the original GRPO paper).
#   sequence_sum_over_max_length: sum over counted tokens / (rows * max response length), a
#     constant normaliser that does not favour short or long answers (Dr.GRPO).
AGGREGATIONS = ("token_mean", "sequence_mean", "sequence_sum_over_max_length")
# Which distribution the ratio is taken under (see rl/trainer.py):
#   sampling: the processed distribution the sampler drew from (temperature, top-k, top-p, suppressed
#     ids); the ratio's old log-probs are the sampler's exact behaviour log-probs.
#   model: the model's distribution at the sampling temperature over the full vocabulary, corrected
#     towards the behaviour distribution by truncated importance sampling (verl's rollout correction).
TRAIN_DISTRIBUTIONS = ("sampling", "model")
OVERLONG = ("none", "mask", "soft_penalty")
# verl's low_var_kl (verl/trainer/ppo/core_algos.py, kl_penalty_forward): log(ref/policy) clamped to +-20 before exp,
# and the k3 value itself clamped to +-10 (so a token the reference all but excludes adds at most 10, and no gradient).
KL_LOG_RATIO_CLAMP = 20.0
KL_VALUE_CLAMP = 10.0


@dataclasses.dataclass(frozen=True)
class GRPOLoss:
    """What the loss of one (mini-)batch computes, inside the jitted update (`grpo_loss`)."""

    clip_low: float = 0.2  # ratio floor 1 - clip_low
    clip_high: float = 0.28  # ratio ceiling 1 + clip_high ("clip-higher")
    kl_coef: float = 0.0  # 0 skips the reference forward entirely
    kl_on_all_tokens: bool = False  # KL on every response token, also of groups without advantage signal
    aggregation: str = "token_mean"  # one of AGGREGATIONS
    log_ratio_clamp: float = 20.0  # |log new/old| is clamped before exp (0: off)

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.log_ratio_clamp < 0:
            raise ValueError(f"log_ratio_clamp must be >= 0, got {self.log_ratio_clamp}")


@dataclasses.dataclass(frozen=True)
class GRPOLoop:
    """What the trainer does with each rollout on the host: advantages, the ratio's distribution,
    passes and updates, dynamic sampling, overlong handling."""

    normalize_std: bool = True  # divide by the group's std (Dr.GRPO sets False)
    eps: float = 1e-6  # a group whose reward std is <= eps carries no signal; also the std's floor
    train_distribution: str = "sampling"  # one of TRAIN_DISTRIBUTIONS
    tis_cap: float = 2.0  # truncation of the importance weights when train_distribution="model"
    epochs: int = 1  # passes over each rollout
    mini_batches: int = 1  # optimizer updates per pass (rows shuffled each pass when `shuffle`)
    shuffle: bool = True
    grad_accumulation: int = 1  # micro-steps summed into each optimizer update
    dynamic_sampling: bool = False  # drop groups with equal rewards, roll out more prompts to refill
    max_sampling_rounds: int = 3  # bound on rollouts per step with dynamic sampling
    overlong: str = "none"  # one of OVERLONG, for responses that hit max_new_tokens
    overlong_buffer: int = 0  # soft_penalty: the last `overlong_buffer` tokens before the limit cost
    overlong_penalty: float = 1.0  # soft_penalty: reward lost at the limit (linear over the buffer)

    def __post_init__(self):
        for name, value, allowed in (("train_distribution", self.train_distribution, TRAIN_DISTRIBUTIONS),
                                     ("overlong", self.overlong, OVERLONG)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name in ("epochs", "mini_batches", "grad_accumulation", "max_sampling_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eps <= 0 or self.tis_cap <= 0 or self.overlong_buffer < 0:
            raise ValueError("eps and tis_cap must be > 0, overlong_buffer >= 0")
        if self.overlong == "soft_penalty" and self.overlong_buffer < 1:
            raise ValueError("overlong='soft_penalty' needs overlong_buffer >= 1")

    @property
    def micro_steps(self) -> int:
        """Row blocks of a rollout: one per micro-step of a mini-batch."""
        return self.mini_batches * self.grad_accumulation


class GRPOConfig(NamedTuple):
    """The `--config.grpo.*` block, split into the loss's settings and the loop's."""

    loss: GRPOLoss = GRPOLoss()
    loop: GRPOLoop = GRPOLoop()

    @classmethod
    def from_block(cls, block: Mapping[str, Any]) -> GRPOConfig:
        """The settings of a flat `config.grpo` block; a key neither half declares raises TypeError
        naming it."""
        loss_keys = {field.name for field in dataclasses.fields(GRPOLoss)}
        loop_keys = {field.name for field in dataclasses.fields(GRPOLoop)}
        values = dict(block)
        unknown = sorted(set(values) - loss_keys - loop_keys)
        if unknown:
            raise TypeError(f"unknown grpo setting(s) {unknown}: neither GRPOLoss nor GRPOLoop declares them")
        return cls(GRPOLoss(**{k: v for k, v in values.items() if k in loss_keys}),
                   GRPOLoop(**{k: v for k, v in values.items() if k not in loss_keys}))


def group_advantages(rewards: jax.Array, group_size: int, *, normalize_std: bool = True,
                     eps: float = 1e-6) -> tuple[jax.Array, jax.Array]:
    """Advantages [N] for rewards [N] laid out prompt-major (N = prompts * group_size).

    Returns (advantages, valid): groups whose rewards are all equal (std <= eps) carry no
    signal; their advantages are 0 and `valid` is 0 for their samples.
    """
    if group_size < 2:
        raise ValueError(f"GRPO needs group_size >= 2 (a group's baseline is its own mean), got {group_size}")
    grouped = rewards.reshape(-1, group_size).astype(jnp.float32)
    mean = grouped.mean(axis=1, keepdims=True)
    std = grouped.std(axis=1, keepdims=True)
    valid = std > eps
    centred = grouped - mean
    advantages = jnp.where(valid, centred / (std + eps) if normalize_std else centred, 0.0)
    return advantages.reshape(-1), jnp.broadcast_to(valid, grouped.shape).reshape(-1).astype(jnp.float32)


def overlong_soft_penalty(lengths: np.ndarray, max_length: int, buffer: int, penalty: float) -> np.ndarray:
    """DAPO's soft overlong punishment: 0 up to max_length - buffer tokens, then linear down to
    -penalty at max_length."""
    over = np.asarray(lengths, np.float64) - (max_length - buffer)
    return (-penalty * np.clip(over / buffer, 0.0, 1.0)).astype(np.float32)


def k3_kl(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """Per-token k3 estimator of KL(policy || reference), exp(r - p) - (r - p) - 1 >= 0, as verl's
    low_var_kl: r - p clamped to +-KL_LOG_RATIO_CLAMP, the value to +-KL_VALUE_CLAMP (one token the
    reference all but excludes would otherwise add up to e^20 to the loss and its gradient)."""
    delta = jnp.clip(ref_logprobs - logprobs, -KL_LOG_RATIO_CLAMP, KL_LOG_RATIO_CLAMP)
    return jnp.clip(jnp.exp(delta) - delta - 1.0, -KL_VALUE_CLAMP, KL_VALUE_CLAMP)


def aggregate(per_token: jax.Array, mask: jax.Array, how: str, max_length: int | None = None) -> jax.Array:
    """One scalar from per-token values [N, T] over mask [N, T] (see AGGREGATIONS)."""
    if how == "token_mean":
        return (per_token * mask).sum() / jnp.maximum(mask.sum(), 1.0)
    rows = mask.sum(axis=1)
    if how == "sequence_mean":
        per_row = (per_token * mask).sum(axis=1) / jnp.maximum(rows, 1.0)
        return (per_row * (rows > 0)).sum() / jnp.maximum((rows > 0).sum(), 1.0)
    length = per_token.shape[1] if max_length is None else max_length
    return (per_token * mask).sum() / (per_token.shape[0] * length)


def grpo_loss(logprobs: jax.Array, old_logprobs: jax.Array, advantages: jax.Array, mask: jax.Array,
              config: GRPOLoss, ref_logprobs: jax.Array | None = None, *, kl_mask: jax.Array | None = None,
              kl_logprobs: jax.Array | None = None, is_weights: jax.Array | None = None,
              max_length: int | None = None) -> tuple[jax.Array, dict]:
    """Scalar loss and metrics: the clipped ratio term plus `kl_coef` times the clamped k3 KL.

    logprobs/old_logprobs/ref_logprobs/mask: [N, T] over completion tokens (mask 1 on
    real tokens of rows that count); advantages: [N]. kl_mask (default: mask) says which
    tokens the KL term covers; kl_logprobs [N, T] are the policy's log-probs under the distribution
    the reference's are taken in (default: logprobs; the trainer passes tempered full-vocabulary ones
    when the ratio uses the sampler's processed distribution, whose support excludes most tokens);
    is_weights [N, T] multiply the policy term (truncated importance sampling); max_length is the
    constant of `sequence_sum_over_max_length` (default T).
    """
    if config.kl_coef and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs the reference policy's log-probs (ref_logprobs)")
    mask = mask.astype(jnp.float32)
    kl_mask = mask if kl_mask is None else kl_mask.astype(jnp.float32)
    log_ratio = logprobs - old_logprobs
    if config.log_ratio_clamp:
        log_ratio = jnp.clip(log_ratio, -config.log_ratio_clamp, config.log_ratio_clamp)
    ratio = jnp.exp(log_ratio)
    adv = advantages[:, None]
    clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_low, 1.0 + config.clip_high)
    per_token = -jnp.minimum(ratio * adv, clipped_ratio * adv)
    if is_weights is not None:
        per_token = per_token * jax.lax.stop_gradient(is_weights)
    loss = aggregate(per_token, mask, config.aggregation, max_length)
    kl = jnp.zeros_like(per_token)
    if config.kl_coef:
        kl = k3_kl(logprobs if kl_logprobs is None else kl_logprobs, ref_logprobs)
        loss = loss + config.kl_coef * aggregate(kl, kl_mask, config.aggregation, max_length)
    tokens = jnp.maximum(mask.sum(), 1.0)
    clipped = ((ratio < 1.0 - config.clip_low) & (adv < 0)) | ((ratio > 1.0 + config.clip_high) & (adv > 0))
    metrics = {
        "kl": (kl * kl_mask).sum() / jnp.maximum(kl_mask.sum(), 1.0),
        "clip_fraction": (clipped * mask).sum() / tokens,
        "ratio_mean": (ratio * mask).sum() / tokens,
    }
    return loss, metrics
