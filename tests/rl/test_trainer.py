"""GRPO end to end on the toy shapes task: it learns, it shards, it resumes after kill -9."""
import importlib.util
import json
import math
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import render
from policy.logprobs import teacher_forced_logprobs
from policy.metric_writers import read_jsonl
from rl.grpo import GRPOLoop, GRPOLoss
from rl.models import prepare_policy
from rl.policy_update import GRPOSteps, PolicyUpdate, grpo_loss_fn, rollout_advantages
from rl.rewards import REWARDS, RewardFn
from rl.rollout_stream import RolloutStream
from rl.trainer import GRPOTrainer, train
from tests.multihost import run_one_process, run_two_processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "tiny_grpo_svg.py")
TIMING = ("time/",)


def tiny_config(**overrides):
    overrides.setdefault("mesh_shape", (1, 1, 1))  # tests hold 8 fake CPU devices; most runs want one
    overrides.setdefault("heldout.n", 0)  # the held-out evaluation has its own tests (and the main job)
    spec = importlib.util.spec_from_file_location("tiny_grpo_svg", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update_from_flattened_dict(overrides)
    return config


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    with render.RenderPool(workers=2) as pool:
        # an untrained tiny policy built here (the config's default is the shipped warm-started one)
        return prepare_policy(tiny_config(**{"model.checkpoint": ""}), str(tmp_path_factory.mktemp("grpo")), pool)


def comparable(record):
    return {k: v for k, v in record.items() if not k.startswith(TIMING)}


def completion_length(task, completion, rendered=None, critique=None, **_):
    """A reward that varies even for an untrained policy, so the compared updates are not zero."""
    return len(completion) / 100.0


@pytest.fixture(scope="module")
def tiny_model():
    from policy.config import Qwen3VLConfig
    from policy.model import init_model

    return init_model(Qwen3VLConfig.tiny(), seed=0)


def text_batch(model, rows):
    """A text-only teacher-forcing batch of `rows` sequences of 5 tokens; targets 2..4 of each row count."""
    from policy.model import prepare_inputs

    ids = np.random.default_rng(0).integers(3, model.config.text.vocab_size, (rows, 5))
    inputs = prepare_inputs(model.config, ids, np.ones((rows, 5), np.int32))
    target_mask = np.zeros((rows, 4), np.float32)
    target_mask[:, 1:] = 1
    return {**{k: jnp.asarray(getattr(inputs, k)) for k in ("input_ids", "attention_mask", "positions")},
            "pixel_values": None, "vision": None, "target_mask": jnp.asarray(target_mask),
            "valid": jnp.ones(rows), "rows": jnp.ones(rows)}


def test_loss_fn_kl_path_matches_k3_by_hand(tiny_model):
    """The KL term compares tempered full-vocabulary log-probs with batch['ref_logprobs']; the ratio
    uses the processed ones. A reference half as likely on every token gives k3 = 0.5 + log 2 - 1."""
    import functools

    from policy.sampling import SamplingParams, process_logits

    batch = text_batch(tiny_model, 2)
    process = functools.partial(process_logits, params=SamplingParams(temperature=0.7, top_k=5))
    processed, _, tempered = teacher_forced_logprobs(tiny_model, batch, chunk_size=None, temperature=0.7,
                                                     process=process, also_tempered=True)
    batch.update(old_logprobs=processed, ref_logprobs=tempered - math.log(2), advantages=jnp.array([1.0, 1.0]))
    grpo = GRPOLoss(kl_coef=0.1)
    loss, metrics = grpo_loss_fn(tiny_model, batch, None, loss=grpo, chunk_size=2, temperature=0.7, process=process)
    k3 = 0.5 + math.log(2) - 1
    # ratio 1 on every counted token: policy term -A = -1, plus 0.1 * k3
    np.testing.assert_allclose(loss, -1.0 + 0.1 * k3, rtol=1e-5)
    np.testing.assert_allclose(metrics["kl"], k3, rtol=1e-5)
    del batch["ref_logprobs"]
    with pytest.raises(KeyError, match="ref_logprobs"):
        grpo_loss_fn(tiny_model, batch, None, loss=grpo, chunk_size=None, temperature=0.7, process=process)


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_loss_fn_gradient_step_moves_log_probs_with_the_advantage_sign(tiny_model, advantage):
    """One small gradient step on a single row raises its completion's log-prob when A > 0 and lowers
    it when A < 0 (to first order the change is lr * A / n * |grad|^2)."""
    from flax import nnx

    batch = text_batch(tiny_model, 1)
    before = teacher_forced_logprobs(tiny_model, batch, chunk_size=None, temperature=1.0)[0]
    batch.update(old_logprobs=before, advantages=jnp.array([advantage]))
    graphdef, params, rest = nnx.split(tiny_model, nnx.Param, ...)
    def loss_of(p):
        return grpo_loss_fn(nnx.merge(graphdef, p, rest), batch, None, loss=GRPOLoss(), chunk_size=None,
                            temperature=1.0)[0]

    loss, grads = jax.value_and_grad(loss_of)(params)
    np.testing.assert_allclose(loss, -advantage, rtol=1e-6)  # ratio 1: the loss is -A
    stepped = nnx.merge(graphdef, jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), rest)
    after = teacher_forced_logprobs(stepped, batch, chunk_size=None, temperature=1.0)[0]
    change = float(((after - before) * batch["target_mask"]).sum())
    assert np.sign(change) == np.sign(advantage) and abs(change) > 1e-6


def test_rollout_advantages_by_hand():
    rewards = np.array([1.0, 0.0, 0.5, 0.5, 2.0, 0.0])  # groups of two
    lengths = np.array([4, 10, 3, 3, 10, 9])
    stopped = np.array([True, False, True, True, False, True])
    adv, valid, rows = rollout_advantages(rewards, lengths, stopped, GRPOLoop(), 2, 10)
    np.testing.assert_allclose(adv, [1, -1, 0, 0, 1, -1], atol=1e-5)  # the better sample of a group gains
    np.testing.assert_array_equal(valid, [1, 1, 0, 0, 1, 1])
    adv, valid, rows = rollout_advantages(rewards, lengths, stopped, GRPOLoop(overlong="mask"), 2, 10)
    np.testing.assert_array_equal(rows, [1, 0, 1, 1, 0, 1])  # cut-off responses leave the loss
    np.testing.assert_array_equal(valid, [1, 0, 0, 0, 0, 1])
    # soft penalty, buffer 2 of 10: length 10 loses 1, length 9 loses 0.5 -> groups [1, -1] and [1.0, -0.5]
    soft = GRPOLoop(overlong="soft_penalty", overlong_buffer=2, normalize_std=False)
    adv, _, _ = rollout_advantages(rewards, lengths, stopped, soft, 2, 10)
    np.testing.assert_allclose(adv, [1, -1, 0, 0, 0.75, -0.75], atol=1e-6)
    # GRPOLoop.eps decides which groups carry signal: a spread of 1e-4 counts at 1e-6, not at 1e-3
    near = np.array([0.0, 1e-4])
    assert rollout_advantages(near, lengths[:2], stopped[:2], GRPOLoop(eps=1e-6), 2, 10)[1].tolist() == [1, 1]
    assert rollout_advantages(near, lengths[:2], stopped[:2], GRPOLoop(eps=1e-3), 2, 10)[1].tolist() == [0, 0]


@pytest.mark.slow  # over 20 s on 2 cores (the fast loop keeps the trainer's unit tests)
def test_grpo_steps_with_top_k_top_p_and_kl(policy_dir, tmp_path, monkeypatch):
    """Behaviour log-probs equal the trainer's at every step (processed distribution), and the KL to
    the reference policy is fed: 0 on the first update, positive once the policy moved."""
    monkeypatch.setitem(REWARDS, "completion_length", RewardFn(completion_length))
    config = tiny_config(**{"model.checkpoint": policy_dir, "reward": "completion_length", "total_steps": 2,
                            "warmstart.steps": 1, "warmstart.batch_size": 2, "checkpoint_every": 100,
                            "prompts_per_step": 2, "group_size": 2, "micro_batches": 1, "max_new_tokens": 24,
                            "sampling.temperature": 0.7, "sampling.top_p": 0.8, "sampling.top_k": 20,
                            "grpo.kl_coef": 0.01, "grpo.epochs": 2})
    record = train(config, str(tmp_path / "run"))
    steps = list(read_jsonl(str(tmp_path / "run" / "metrics.jsonl")))
    assert len(steps) == 2 and record["step"] == 2
    for metrics in steps:
        assert metrics["rollout_logprob_diff/mean"] < 1e-3, metrics
        assert np.isfinite(metrics["loss"])
    assert steps[-1]["kl"] > 0


@pytest.mark.slow  # over 20 s on 2 cores (the fast loop keeps the trainer's unit tests)
def test_sharded_grpo_steps_match_one_device(policy_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(REWARDS, "completion_length", RewardFn(completion_length))
    overrides = {"model.checkpoint": policy_dir, "reward": "completion_length", "total_steps": 2,
                 "warmstart.steps": 3, "checkpoint_every": 100, "prompts_per_step": 4, "group_size": 4}

    def run(shape, name):
        trainer = GRPOTrainer(tiny_config(mesh_shape=shape, **overrides), str(tmp_path / name))
        try:
            trainer.start()
            metrics = [trainer.rl_step(step) for step in (1, 2)]
            return metrics, jax.tree.map(np.asarray, trainer.run.state.params)
        finally:
            trainer.close()

    sharded, sharded_params = run((1, 2, 4), "sharded")
    single, single_params = run((1, 1, 1), "single")
    assert sharded[0]["valid_groups"] > 0  # the updates are not trivially zero
    for a, b in zip(sharded, single):
        a, b = comparable(a), comparable(b)
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    # Sums over the mesh round differently; Adam's normalised step turns that rounding, where a
    # gradient is near zero, into moves of up to a few percent of one lr-5e-4 step (seen: 1.5e-6).
    for a, b in zip(jax.tree.leaves(sharded_params), jax.tree.leaves(single_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_grpo_raises_pixel_reward_after_a_warm_start(policy_dir, tmp_path):
    config = tiny_config(**{"model.checkpoint": policy_dir, "reward": "mse", "total_steps": 24,
                            "checkpoint_every": 100, "warmstart.steps": 150})
    train(config, str(tmp_path))
    records = read_jsonl(str(tmp_path / "metrics.jsonl"))
    rewards = [r["reward_mean"] for r in records]
    first, last = np.mean(rewards[:6]), np.mean(rewards[-6:])
    assert last > first + 0.08, rewards
    # default sampling: the trainer reproduces the sampler's behaviour log-probs at every step
    assert max(r["rollout_logprob_diff/mean"] for r in records) < 1e-3
    assert os.path.getsize(tmp_path / "reward.png") > 1000


@pytest.mark.slow  # over 20 s on 2 cores (the fast loop keeps the trainer's unit tests)
def test_visual_erm_reward_loop_runs_end_to_end(policy_dir, tmp_path):
    config = tiny_config(**{"model.checkpoint": policy_dir, "total_steps": 1, "warmstart.steps": 40,
                            "prompts_per_step": 4, "group_size": 2, "checkpoint_every": 1})
    record = train(config, str(tmp_path))
    assert record["step"] == 1
    assert 0.0 <= record["reward_mean"] <= 2.0
    assert os.path.isdir(tmp_path / "checkpoints" / "1")


@pytest.fixture(scope="module")
def warm_policy_dir(policy_dir, tmp_path_factory):
    """The untrained tiny policy after the main job's 150 warm-start steps (a GRPO run of 0 RL steps keeps
    it as checkpoint step 0), exported as a Hugging Face directory."""
    from launch import export_hf

    run = tmp_path_factory.mktemp("warm_start")
    train(tiny_config(**{"model.checkpoint": policy_dir, "total_steps": 0, "warmstart.steps": 150}), str(run / "run"))
    export_hf.main([f"--checkpoint={run / 'run'}", "--step=0", f"--out={run / 'policy'}"])
    return str(run / "policy")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two GRPO runs (one process, then two side by side), after a 150-step warm start
@pytest.mark.parametrize("reward", ["completion_length", "visual_erm"])
def test_two_jax_distributed_processes_match_one_process(policy_dir, tmp_path, reward, request):
    """Two processes x 4 CPU devices, each with its own render pool and its block of every micro-batch,
    take the same two GRPO steps (after a warm start) as one 8-device process: same rollouts, losses,
    gradient norms and metrics (to 1e-5), same parameters. With the Visual-ERM reward the hosts judge
    different numbers of pairs (their renders differ) and still make the same judge calls."""
    start = policy_dir if reward == "completion_length" else request.getfixturevalue("warm_policy_dir")
    script = ("tests.rl.multihost_grpo", reward, start)
    run_one_process(*script, tmp_path / "single", tmp_path / "single.json", timeout=850)
    run_two_processes(*script, tmp_path / "multi", tmp_path / "multi.json", timeout=850)
    one, two = (json.loads((tmp_path / name).read_text()) for name in ("single.json", "multi.json"))
    assert one["metrics"][0]["valid_groups"] > 0  # the updates are not trivially zero
    if reward == "visual_erm":
        judged = [json.loads((tmp_path / f"multi.json.judged.{p}").read_text()) for p in (0, 1)]
        assert judged[0] != judged[1], judged  # uneven pairs to judge on the two hosts
        assert [a + b for a, b in zip(*judged)] == json.loads((tmp_path / "single.json.judged.0").read_text())
        assert all(m["critique_parse_rate"] > 0 for m in one["metrics"])
    # Each host holds its block of every micro-batch, so rows reach the update in another order and
    # sums round differently; Adam's normalised steps turn that into up to ~1% of one step (lr 5e-4)
    # where a gradient is near zero.
    train_rel, params_atol = 1e-5, 1e-5
    trained = ("loss", "grad_norm", "entropy", "ratio_mean", "clip_fraction", "kl")
    for a, b in zip(two["metrics"], one["metrics"]):
        assert a.keys() == b.keys()
        for key in a:
            # |behaviour - trainer log-prob| is float32 rounding (~1e-6) that differs with the layout
            rounding = 1e-5 if key.startswith("rollout_logprob_diff/") else 1e-6
            rel = train_rel if key in trained else 1e-5
            assert a[key] == pytest.approx(b[key], rel=rel, abs=rounding), key
    one_params, two_params = (np.load(tmp_path / name) for name in ("single.json.npz", "multi.json.npz"))
    for name in one_params.files:
        np.testing.assert_allclose(two_params[name], one_params[name], rtol=1e-5, atol=params_atol)


def test_updates_cover_every_row_once_per_epoch_and_average_metrics():
    """The update role alone (no models): its schedule of optimizer updates over a rollout's rows."""
    from policy.sharding import make_mesh
    from rl.rollout import Rollout

    seen = []

    def step_fn(state, batch):
        seen.append(np.asarray(batch["advantages"]))
        return state + 1, {"loss": jnp.asarray(float(len(seen)))}

    run = types.SimpleNamespace(mesh=make_mesh((1, 1, 1), devices=jax.devices()[:1]), state=0)
    update = PolicyUpdate(run, GRPOSteps(step_fn, None, None, None), GRPOLoop(epochs=2, mini_batches=2,
                          grad_accumulation=2), None, None, seed=0, group_size=2, max_new_tokens=4, patch_buckets=())

    def host_batch(prompt, tokens, lengths, group_size, rows):
        return {"input_ids": tokens, "target_mask": np.ones((len(rows), 3))}

    update.batch = host_batch
    n = 8
    rollout = Rollout(tasks=[], group_size=2, prompt={}, tokens=np.zeros((n, 4), np.int32),
                      lengths=np.full(n, 4), stopped=np.ones(n, bool), sample_logprobs=np.zeros((n, 4)), texts=[],
                      codes=[], renders=[], critiques=[], rewards=np.zeros(n), reward_failed=np.zeros(n, bool),
                      timing={})
    host = {"advantages": np.arange(n, dtype=np.float32), "valid": np.ones(n), "rows": np.ones(n)}
    updates = update.updates(1, rollout, {**host, "old_logprobs": np.zeros((n, 3), np.float32)})
    assert run.state == 8 and len(updates) == 8  # 2 epochs x 2 mini-batches x 2 accumulation steps
    assert all(len(part) == 2 for part in seen)
    for epoch in (seen[:4], seen[4:]):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(n))  # every row once per epoch
    assert not np.array_equal(np.concatenate(seen[:4]), np.concatenate(seen[4:]))  # reshuffled
    assert np.mean([u["loss"] for u in updates]) == pytest.approx(4.5)  # the step reports the mean of all


def test_dynamic_sampling_refills_groups_with_signal():
    """The rollout role alone (a scripted worker): dynamic sampling keeps groups with signal."""
    import itertools

    from rl.rollout import Rollout

    def processor(messages, padding_side):
        return {"input_ids": np.zeros((len(messages), 1))}

    rewards = iter([[1.0, 1.0, 0.0, 1.0], [0.5, 0.5, 2.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    calls = []

    def worker(tasks, key):
        calls.append(tasks)
        r = np.asarray(next(rewards), np.float32)
        names = [types.SimpleNamespace(id=f"{len(calls)}-{t}", reference_image=None, prompt="") for t in tasks]
        return Rollout(tasks=names, group_size=2, prompt={}, tokens=np.zeros((4, 2), np.int32),
                       lengths=np.full(4, 2), stopped=np.ones(4, bool), sample_logprobs=np.zeros((4, 2)),
                       texts=list("abcd"), codes=[None] * 4, renders=[None] * 4, critiques=[None] * 4, rewards=r,
                       reward_failed=np.zeros(4, bool), timing={"sample": 1.0})

    rollouts = RolloutStream(worker, itertools.cycle(range(2)), processor,
                             GRPOLoop(dynamic_sampling=True, max_sampling_rounds=3), seed=0, prompts_per_step=2,
                             micro_batches=1, group_size=2)
    rollout, metrics = rollouts(1)
    assert len(calls) == 2  # the first rollout had one group with signal, the second filled the batch
    assert [t.id for t in rollout.tasks] == ["1-1", "2-1"] and metrics["dynamic_sampling/rounds"] == 2
    np.testing.assert_array_equal(rollout.rewards, [0.0, 1.0, 2.0, 0.0])
    assert rollout.timing["sample"] == 2.0


@pytest.mark.slow  # over 20 s on 2 cores (the fast loop keeps the trainer's unit tests)
def test_old_and_reference_logprobs_by_micro_step_equal_one_forward_over_the_rollout(policy_dir, tmp_path,
                                                                                      monkeypatch):
    """The trainer computes old/reference log-probs one micro-step's rows at a time (an 8B rollout's
    forward does not fit a chip); that must be the whole rollout's forward, row for row."""
    from policy.host_batch import device_batch

    monkeypatch.setitem(REWARDS, "completion_length", RewardFn(completion_length))
    config = tiny_config(**{"model.checkpoint": policy_dir, "reward": "completion_length", "warmstart.steps": 0,
                            "prompts_per_step": 4, "group_size": 2, "micro_batches": 1, "max_new_tokens": 16,
                            "grpo.kl_coef": 0.01, "grpo.mini_batches": 2, "grpo.grad_accumulation": 2})
    trainer = GRPOTrainer(config, str(tmp_path))
    try:
        trainer.start()
        rollout, _ = trainer.rollouts(1)
        host_batch = trainer.update.batch(rollout.prompt, rollout.tokens, rollout.lengths, 2,
                                    behaviour_logprobs=rollout.sample_logprobs)
        n = len(rollout.tokens)
        parts = trainer.update.row_logprobs(rollout)
        np.testing.assert_array_equal(parts["target_mask"], host_batch["target_mask"])
        np.testing.assert_array_equal(parts["behaviour"], host_batch.pop("behaviour_logprobs"))
        whole = device_batch(host_batch, trainer.run.mesh)
        mask = host_batch["target_mask"] > 0
        assert mask.sum() > n  # real completions are compared
        steps = trainer.update.steps
        for key, fn, params in (("old", steps.logprobs, trainer.run.state.params),
                                ("ref", steps.tempered_logprobs, trainer.update.ref_params)):
            expected = np.asarray(fn(params, whole))
            assert parts[key].shape == expected.shape
            np.testing.assert_allclose(parts[key][mask], expected[mask], rtol=1e-5, atol=1e-5)
    finally:
        trainer.close()
