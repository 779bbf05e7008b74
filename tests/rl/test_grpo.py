"""GRPO loss, advantages and KL against hand-computed numbers."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rl.grpo import GRPOConfig, GRPOLoss, group_advantages, grpo_loss, k3_kl, overlong_soft_penalty


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
    cfg = GRPOLoss(clip_low=0.2, clip_high=0.28)
    # row 0 (A=+1): ratio 1.5 -> min(1.5, 1.28) = 1.28 ; ratio 0.5 -> min(0.5, 0.8) = 0.5 ; pad ignored
    # row 1 (A=-1): ratio 1.1 -> min(-1.1, -1.1) = -1.1 ; 2.0 -> min(-2.0, -1.28) = -2.0 ; 1.0 -> -1.0
    per_token = [[-1.28, -0.5], [1.1, 2.0, 1.0]]
    token_mean = (sum(per_token[0]) + sum(per_token[1])) / 5
    loss, metrics = grpo_loss(new, old, adv, mask, cfg)
    np.testing.assert_allclose(loss, token_mean, rtol=1e-6)
    # clipped tokens: row0 ratio 1.5 (A>0, >1.28) ; row1 ratio 2.0 is NOT clipped (A<0 takes the unclipped)
    np.testing.assert_allclose(metrics["clip_fraction"], 1 / 5, rtol=1e-6)
    seq_loss, _ = grpo_loss(new, old, adv, mask, GRPOLoss(aggregation="sequence_mean"))
    np.testing.assert_allclose(seq_loss, (sum(per_token[0]) / 2 + sum(per_token[1]) / 3) / 2, rtol=1e-6)


def test_kl_term_adds_coefficient_times_k3():
    lp = jnp.log(jnp.array([[0.5, 0.5]]))
    ref = jnp.log(jnp.array([[0.25, 0.5]]))
    mask = jnp.ones((1, 2))
    base, _ = grpo_loss(lp, lp, jnp.array([0.0]), mask, GRPOLoss())
    with_kl, metrics = grpo_loss(lp, lp, jnp.array([0.0]), mask, GRPOLoss(kl_coef=0.1), ref_logprobs=ref)
    kl_mean = (0.5 + math.log(2) - 1 + 0.0) / 2
    np.testing.assert_allclose(base, 0.0, atol=1e-7)
    np.testing.assert_allclose(with_kl, 0.1 * kl_mean, rtol=1e-6)
    np.testing.assert_allclose(metrics["kl"], kl_mean, rtol=1e-6)


def test_bad_aggregation_is_refused():
    with pytest.raises(ValueError):
        GRPOLoss(aggregation="mean")


def test_eps_decides_which_groups_carry_signal():
    rewards = jnp.array([0.0, 1e-4, 1.0, 0.0])  # group 1 std 5e-5, group 2 std 0.5
    _, valid = group_advantages(rewards, 2, eps=1e-6)
    np.testing.assert_array_equal(valid, [1, 1, 1, 1])
    adv, valid = group_advantages(rewards, 2, eps=1e-3)
    np.testing.assert_array_equal(valid, [0, 0, 1, 1])
    np.testing.assert_allclose(adv, [0, 0, 0.5 / (0.5 + 1e-3), -0.5 / (0.5 + 1e-3)], rtol=1e-6)


def test_group_size_below_two_is_refused():
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(jnp.array([1.0, 0.0]), 1)


def test_dr_grpo_constant_normaliser_by_hand():
    old = jnp.zeros((2, 4))
    new = jnp.zeros((2, 4))  # ratio 1 everywhere: per-token loss = -A
    adv = jnp.array([1.0, -0.5])
    mask = jnp.array([[1, 1, 0, 0], [1, 1, 1, 0]])
    cfg = GRPOLoss(aggregation="sequence_sum_over_max_length")
    # sum of per-token losses: row 0: 2 * -1 = -2 ; row 1: 3 * 0.5 = 1.5 ; / (2 rows * max length 6)
    loss, _ = grpo_loss(new, old, adv, mask, cfg, max_length=6)
    np.testing.assert_allclose(loss, (-2 + 1.5) / 12, rtol=1e-6)
    loss, _ = grpo_loss(new, old, adv, mask, cfg)  # default constant: the padded width (4)
    np.testing.assert_allclose(loss, (-2 + 1.5) / 8, rtol=1e-6)


def test_log_ratio_clamp_and_importance_weights():
    old = jnp.zeros((1, 2))
    new = jnp.array([[-50.0, 0.0]])  # a token the new policy all but excludes
    adv, mask = jnp.array([-1.0]), jnp.ones((1, 2))
    # A<0: per token max(r, clip(r)) * 1 ; r = exp(-50) -> clip to 0.8 ; r = 1 -> 1
    loss, metrics = grpo_loss(new, old, adv, mask, GRPOLoss(log_ratio_clamp=20.0))
    np.testing.assert_allclose(loss, (0.8 + 1.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(metrics["ratio_mean"], (math.exp(-20) + 1) / 2, rtol=1e-5)
    weights = jnp.array([[0.5, 2.0]])
    weighted, _ = grpo_loss(new, old, adv, mask, GRPOLoss(), is_weights=weights)
    np.testing.assert_allclose(weighted, (0.8 * 0.5 + 1.0 * 2.0) / 2, rtol=1e-6)


def test_kl_mask_covers_tokens_outside_the_policy_mask():
    lp = jnp.log(jnp.array([[0.5, 0.5], [0.5, 0.5]]))
    ref = jnp.log(jnp.array([[0.25, 0.5], [0.25, 0.25]]))
    mask = jnp.array([[1, 1], [0, 0]])  # row 1's group carries no advantage signal
    k = 0.5 + math.log(2) - 1
    _, only_valid = grpo_loss(lp, lp, jnp.zeros(2), mask, GRPOLoss(kl_coef=0.1), ref)
    loss, every = grpo_loss(lp, lp, jnp.zeros(2), mask, GRPOLoss(kl_coef=0.1), ref, kl_mask=jnp.ones((2, 2)))
    np.testing.assert_allclose(only_valid["kl"], k / 2, rtol=1e-6)
    np.testing.assert_allclose(every["kl"], 3 * k / 4, rtol=1e-6)
    np.testing.assert_allclose(loss, 0.1 * 3 * k / 4, rtol=1e-6)


def test_k3_clamped_as_verl_low_var_kl():
    # verl: kl = clamp(ref - logp, -20, 20); clamp(exp(kl) - kl - 1, -10, 10)
    p = jnp.array([-1e30, -1.0, -5.0, -1.0, -0.5])
    r = jnp.array([-1.0, -1e30, -1.0, -3.0, -3.0])
    # deltas: +20 (clamped), -20 (clamped), 4, -2, -2.5
    expected = [10.0, min(math.exp(-20) + 20 - 1, 10.0), min(math.exp(4) - 5, 10.0),
                math.exp(-2) + 1, math.exp(-2.5) + 1.5]
    np.testing.assert_allclose(k3_kl(p, r), expected, rtol=1e-6)


def test_k3_gradient_is_zero_where_the_value_is_clamped():
    grad = jax.grad(lambda p: k3_kl(p, jnp.array([-1.0, -1.0])).sum())(jnp.array([-30.0, -1.5]))
    assert grad[0] == 0.0  # delta 20 -> value 10: clamped, no gradient (the unclamped one was -(e^20 - 1))
    np.testing.assert_allclose(grad[1], -(math.exp(0.5) - 1), rtol=1e-6)


def test_overlong_soft_penalty_by_hand():
    # limit 10, buffer 4: free up to 6 tokens, then -1/4 per token down to -1 at 10
    np.testing.assert_allclose(overlong_soft_penalty(np.array([3, 6, 7, 9, 10]), 10, 4, 1.0),
                               [0, 0, -0.25, -0.75, -1.0], rtol=1e-6)


def test_config_refuses_bad_options():
    for bad in ({"train_distribution": "vllm"}, {"overlong": "cut"}, {"mini_batches": 0}, {"epochs": 0},
                {"overlong": "soft_penalty"}, {"eps": 0.0}, {"aggregation": "mean"}, {"log_ratio_clamp": -1.0}):
        with pytest.raises(ValueError):
            GRPOConfig.from_block(bad)


def test_config_block_splits_into_loss_and_loop_settings():
    grpo = GRPOConfig.from_block({"clip_high": 0.3, "kl_coef": 0.01, "epochs": 2, "grad_accumulation": 2})
    assert (grpo.loss.clip_high, grpo.loss.kl_coef, grpo.loop.epochs, grpo.loop.micro_steps) == (0.3, 0.01, 2, 2)
    with pytest.raises(TypeError, match="clip_hgh"):
        GRPOConfig.from_block({"clip_hgh": 0.3})


def test_kl_needs_the_reference_and_is_taken_under_kl_logprobs():
    lp, mask = jnp.log(jnp.array([[0.5, 0.5]])), jnp.ones((1, 2))
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(lp, lp, jnp.array([0.0]), mask, GRPOLoss(kl_coef=0.1))
    # the ratio's log-probs are lp (ratio 1), the KL's are log 0.25 against a reference of log 0.5: k3 = 2 - log 2 - 1
    ref, tempered = jnp.log(jnp.array([[0.5, 0.5]])), jnp.log(jnp.array([[0.25, 0.25]]))
    loss, metrics = grpo_loss(lp, lp, jnp.array([0.0]), mask, GRPOLoss(kl_coef=0.1), ref, kl_logprobs=tempered)
    k3 = 2 - math.log(2) - 1
    np.testing.assert_allclose(metrics["kl"], k3, rtol=1e-6)
    np.testing.assert_allclose(loss, 0.1 * k3, rtol=1e-6)
