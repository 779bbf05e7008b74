"""GRPO loss, advantages and KL against hand-computed numbers."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from rl.grpo import GRPOConfig, group_advantages, grpo_loss, k3_kl


def test_group_advantages_by_hand():
    rewards = jnp.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5])  # two groups of 4
    adv, valid = group_advantages(rewards, 4)
    # group 1: mean 0.5, std 0.5 -> (r - 0.5) / 0.5 = +-1 ; group 2: zero variance -> masked
    np.testing.assert_allclose(adv, [1, -1, 1, -1, 0, 0, 0, 0], atol=1e-5)
    np.testing.assert_array_equal(valid, [1, 1, 1, 1, 0, 0, 0, 0])
    centred, _ = group_advantages(rewards, 4, normalize_std=False)
    np.testing.assert_allclose(centred, [0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0], atol=1e-6)


def test_k3_kl_by_hand():
    p, r = jnp.log(jnp.array([0.5])), jnp.log(jnp.array([0.25]))
    # delta = log(0.25/0.5) = -log 2 ; exp(delta) - delta - 1 = 0.5 + log 2 - 1
    np.testing.assert_allclose(k3_kl(p, r), [0.5 + math.log(2) - 1], rtol=1e-6)
    np.testing.assert_allclose(k3_kl(p, p), [0.0], atol=1e-7)


def test_clipped_loss_token_and_sequence_mean_by_hand():
    old = jnp.zeros((2, 3))
    new = jnp.log(jnp.array([[1.5, 0.5, 1.0], [1.1, 2.0, 1.0]]))  # ratios
    adv = jnp.array([1.0, -1.0])
    mask = jnp.array([[1, 1, 0], [1, 1, 1]])
    cfg = GRPOConfig(clip_low=0.2, clip_high=0.28)
    # row 0 (A=+1): ratio 1.5 -> min(1.5, 1.28) = 1.28 ; ratio 0.5 -> min(0.5, 0.8) = 0.5 ; pad ignored
    # row 1 (A=-1): ratio 1.1 -> min(-1.1, -1.1) = -1.1 ; 2.0 -> min(-2.0, -1.28) = -2.0 ; 1.0 -> -1.0
    per_token = [[-1.28, -0.5], [1.1, 2.0, 1.0]]
    token_mean = (sum(per_token[0]) + sum(per_token[1])) / 5
    loss, metrics = grpo_loss(new, old, adv, mask, cfg)
    np.testing.assert_allclose(loss, token_mean, rtol=1e-6)
    # clipped tokens: row0 ratio 1.5 (A>0, >1.28) ; row1 ratio 2.0 is NOT clipped (A<0 takes the unclipped)
    np.testing.assert_allclose(metrics["clip_fraction"], 1 / 5, rtol=1e-6)
    seq_loss, _ = grpo_loss(new, old, adv, mask, GRPOConfig(aggregation="sequence_mean"))
    np.testing.assert_allclose(seq_loss, (sum(per_token[0]) / 2 + sum(per_token[1]) / 3) / 2, rtol=1e-6)


def test_kl_term_adds_coefficient_times_k3():
    lp = jnp.log(jnp.array([[0.5, 0.5]]))
    ref = jnp.log(jnp.array([[0.25, 0.5]]))
    mask = jnp.ones((1, 2))
    base, _ = grpo_loss(lp, lp, jnp.array([0.0]), mask, GRPOConfig())
    with_kl, metrics = grpo_loss(lp, lp, jnp.array([0.0]), mask, GRPOConfig(kl_coef=0.1), ref_logprobs=ref)
    kl_mean = (0.5 + math.log(2) - 1 + 0.0) / 2
    np.testing.assert_allclose(base, 0.0, atol=1e-7)
    np.testing.assert_allclose(with_kl, 0.1 * kl_mean, rtol=1e-6)
    np.testing.assert_allclose(metrics["kl"], kl_mean, rtol=1e-6)


def test_bad_aggregation_is_refused():
    with pytest.raises(ValueError):
        GRPOConfig(aggregation="mean")
