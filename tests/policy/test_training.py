"""Model-generic training machinery: optimizer, sharded train step, checkpoints, metric logs."""
import glob
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from policy.checkpointing import Checkpointer, abstract_like, write_config
from policy.metric_writers import MetricWriter, plot_curves, read_jsonl
from policy.optimizer import learning_rate_schedule, make_optimizer
from policy.sharding import make_mesh
from policy.train_state import init_opt_state, init_train_state, make_train_step, opt_state_shardings, state_shardings


class TinyMLP(nnx.Module):
    """Two layers whose parameters carry logical axis names, like the real model."""

    def __init__(self, rngs: nnx.Rngs):
        init = nnx.initializers.lecun_normal()
        self.w1 = nnx.Param(init(rngs.params(), (8, 16)), logical_axes=("embed", "mlp"))
        self.b1 = nnx.Param(jnp.zeros((16,)), logical_axes=("mlp",))
        self.w2 = nnx.Param(init(rngs.params(), (16, 8)), logical_axes=("mlp", "embed"))

    def __call__(self, x):
        return jnp.tanh(x @ self.w1 + self.b1) @ self.w2


def mse_loss(model, batch, rng):
    noise = 1e-3 * jax.random.normal(rng, batch["x"].shape)  # the step's rng reaches the loss
    err = model(batch["x"] + noise) - batch["y"]
    return jnp.mean(err**2), {"abs_err": jnp.mean(jnp.abs(err))}


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(8, 8)).astype(np.float32)
    for _ in range(n):
        x = rng.normal(size=(16, 8)).astype(np.float32)
        yield {"x": x, "y": np.tanh(x) @ target}


def run_steps(mesh, n=3, cfg=None):
    tx = make_optimizer(cfg or {"learning_rate": 1e-2, "total_steps": 10, "warmup_steps": 2, "weight_decay": 0.01})
    parts, state = init_train_state(TinyMLP(nnx.Rngs(0)), tx, seed=1, mesh=mesh)
    step = make_train_step(parts, tx, mse_loss, state_shardings(state))
    losses = []
    for batch in batches(n):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    return state, losses


def test_schedule_warms_up_then_decays_to_end_ratio():
    cfg = {"learning_rate": 1.0, "warmup_steps": 4, "total_steps": 20, "end_learning_rate_ratio": 0.1}
    schedule = learning_rate_schedule(cfg)
    assert float(schedule(0)) == 0.0 and float(schedule(2)) == pytest.approx(0.5)
    assert float(schedule(4)) == pytest.approx(1.0)
    assert float(schedule(20)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown optimizer settings"):
        make_optimizer({"learning_rat": 1.0})


def test_train_step_lowers_the_loss():
    _, losses = run_steps(None, n=30, cfg={"learning_rate": 3e-2, "total_steps": 30})
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_sharded_steps_match_single_device():
    mesh = make_mesh((1, 2, 4))
    sharded, sharded_losses = run_steps(mesh)
    single, single_losses = run_steps(None)
    assert sharded.params["w1"].sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(sharded.params), jax.tree.leaves(single.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_updates_every_k_steps():
    tx = make_optimizer({"learning_rate": 1e-2, "grad_accum_steps": 2})
    parts, state = init_train_state(TinyMLP(nnx.Rngs(0)), tx)
    step = make_train_step(parts, tx, mse_loss, donate=False)
    data = list(batches(2))
    first, _ = step(state, data[0])
    np.testing.assert_array_equal(np.asarray(first.params["w1"]), np.asarray(state.params["w1"]))
    second, _ = step(first, data[1])
    assert not np.allclose(np.asarray(second.params["w1"]), np.asarray(state.params["w1"]))


def test_a_second_optimizer_over_the_same_parameters_takes_their_layout():
    """GRPO's warm start steps the RL state's parameters with its own optimizer (no MultiSteps): its state
    and step shardings come from the parameters' shardings, not from the RL optimizer's state tree."""
    mesh = make_mesh((1, 2, 4))
    rl_tx = make_optimizer({"learning_rate": 1e-2, "grad_accum_steps": 2})
    warm_tx = make_optimizer({"learning_rate": 1e-2})
    parts, state = init_train_state(TinyMLP(nnx.Rngs(0)), rl_tx, mesh=mesh)
    shardings = state_shardings(state)
    warm_state = state.replace(opt_state=init_opt_state(warm_tx, state.params, shardings.params))
    warm_shardings = shardings.replace(opt_state=opt_state_shardings(warm_tx, state.params, shardings.params))
    assert jax.tree.structure(warm_shardings.opt_state) != jax.tree.structure(shardings.opt_state)
    step = make_train_step(parts, warm_tx, mse_loss, warm_shardings)
    stepped, _ = step(warm_state, next(batches(1)))
    assert stepped.params["w1"].sharding == state.params["w1"].sharding
    moments = [x for x in jax.tree.leaves(stepped.opt_state) if x.shape == (8, 16)]  # Adam's mu and nu of w1
    assert len(moments) == 2
    assert all(x.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor") for x in moments)


def test_checkpoint_round_trip_and_fallback_past_a_truncated_step(tmp_path, caplog):
    state, _ = run_steps(None, n=2)
    ckpt = Checkpointer(str(tmp_path / "ckpt"), max_to_keep=3)
    ckpt.save(1, state, {"data": {"position": 7}})
    later = state.replace(step=state.step + 5)
    ckpt.save(2, later, {"data": {"position": 9}})
    ckpt.wait()
    step, restored, extra = ckpt.restore(abstract_like(state))
    assert step == 2 and extra == {"data": {"position": 9}} and int(restored.step) == int(later.step)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(later)):
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Truncate every data file of the newest step: restore must warn and fall back to step 1.
    for path in glob.glob(str(tmp_path / "ckpt" / "2" / "state" / "**" / "*"), recursive=True):
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        step, _, extra = Checkpointer(str(tmp_path / "ckpt")).restore(abstract_like(state))
    assert step == 1 and extra == {"data": {"position": 7}}
    assert "unreadable" in caplog.text


def test_empty_directory_restores_nothing(tmp_path):
    state, _ = run_steps(None, n=1)
    assert Checkpointer(str(tmp_path / "none")).restore(abstract_like(state)) is None


def test_metric_log_is_cut_back_on_resume_and_survives_a_torn_line(tmp_path):
    writer = MetricWriter(str(tmp_path), writers="tensorboard,jsonl")
    for step in range(1, 6):
        writer.write(step, {"loss": 1.0 / step})
    writer.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "lo')  # killed mid-write
    resumed = MetricWriter(str(tmp_path), resume_step=3, writers="jsonl")
    resumed.write(4, {"loss": 0.3})
    resumed.close()
    assert [r["step"] for r in read_jsonl(str(tmp_path / "metrics.jsonl"))] == [1, 2, 3, 4]
    assert glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*"))
    png = plot_curves(str(tmp_path / "metrics.jsonl"), str(tmp_path / "loss.png"), ("loss",))
    assert os.path.getsize(png) > 1000


def test_write_config_is_readable_json(tmp_path):
    import ml_collections

    cfg = ml_collections.ConfigDict({"model": {"layers": 2}, "lr": 1e-3})
    path = write_config(str(tmp_path), cfg)
    assert json.load(open(path)) == {"lr": 0.001, "model": {"layers": 2}}


# -- precision: fp32 master weights, bf16 compute ---------------------------------------------------
def _image_text_batch(config, rows=4, length=24, seed=0):
    """Rows of one 4x4-patch image (4 merged tokens) then random text; the loss covers the text."""
    from policy.model import prepare_inputs

    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 100, size=(rows, length)).astype(np.int32)
    ids[:, 1] = config.vision_start_token_id
    ids[:, 2:6] = config.image_token_id
    ids[:, 6] = config.vision_end_token_id
    grids = np.tile([[1, 4, 4]], (rows, 1))
    inputs = prepare_inputs(config, ids, None, grids, rows * 16)
    target_mask = np.zeros((rows, length - 1), np.int32)  # predicted tokens: the text after the image
    target_mask[:, 6:] = 1
    pixels = rng.normal(size=(rows * 16, config.vision.patch_dim)).astype(np.float32)
    return {"input_ids": inputs.input_ids, "attention_mask": inputs.attention_mask, "positions": inputs.positions,
            "target_mask": target_mask, "pixel_values": pixels, "vision": inputs.vision}


def _train(dtype, param_dtype, *, steps, learning_rate, batches_seed=0):
    """(initial params, final params, losses, opt_state) of `steps` AdamW steps of the SFT loss."""
    from policy.config import Qwen3VLConfig
    from policy.logprobs import sft_loss
    from policy.model import init_model

    config = Qwen3VLConfig.tiny(dtype=dtype, param_dtype=param_dtype)
    tx = make_optimizer({"learning_rate": learning_rate, "total_steps": steps, "end_learning_rate_ratio": 1.0,
                         "clip_norm": 0.0})
    parts, state = init_train_state(init_model(config, seed=0), tx)
    initial = jax.tree.map(np.array, state.params)
    step = make_train_step(parts, tx, sft_loss)
    losses = []
    for i in range(steps):
        state, metrics = step(state, _image_text_batch(config, seed=batches_seed + i))
        losses.append(float(metrics["loss"]))
    return initial, jax.tree.map(np.array, state.params), losses, state.opt_state


def _changed(initial, final):
    return np.concatenate([(np.asarray(a) != np.asarray(b)).ravel()
                           for a, b in zip(jax.tree.leaves(initial), jax.tree.leaves(final))])


@pytest.mark.slow  # three tiny-model compilations and 30 steps
def test_bf16_compute_with_fp32_masters_keeps_lr_1e6_updates():
    """At lr 1e-6, bf16 compute on fp32 master weights changes (almost) every weight a pure fp32 run
    changes (measured 99.99%); bf16 storage rounds most of those updates away (3%): why `param_dtype`
    is its own knob."""
    fp32 = _changed(*_train("float32", "float32", steps=10, learning_rate=1e-6)[:2])
    mixed_initial, mixed_final, _, opt_state = _train("bfloat16", "float32", steps=10, learning_rate=1e-6)
    mixed = _changed(mixed_initial, mixed_final)
    bf16 = _changed(*_train("bfloat16", "bfloat16", steps=10, learning_rate=1e-6)[:2])
    assert fp32.mean() > 0.5  # the text path and the vision tower both learn
    assert (mixed & fp32).sum() >= 0.99 * fp32.sum()
    assert (bf16 & fp32).sum() < 0.5 * fp32.sum()
    moments = [x for x in jax.tree.leaves(opt_state) if getattr(x, "ndim", 0) >= 1]
    assert moments and all(x.dtype == jnp.float32 for x in moments)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(mixed_final))


def test_bf16_compute_tracks_the_fp32_sft_loss_curve():
    """Tiny SFT (lr 3e-3, 12 steps on fresh batches): every step's loss with bf16 compute is within
    0.1% of the fp32 run's (measured: 0.02% at most), and both curves fall."""
    _, _, fp32, _ = _train("float32", "float32", steps=12, learning_rate=3e-3)
    _, _, mixed, _ = _train("bfloat16", "float32", steps=12, learning_rate=3e-3)
    for curve in (fp32, mixed):
        assert np.mean(curve[-3:]) < np.mean(curve[:3]) - 0.03
    np.testing.assert_allclose(mixed, fp32, rtol=1e-3)
