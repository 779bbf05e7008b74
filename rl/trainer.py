"""GRPO with Visual-ERM (or baseline) rewards: one sharded JAX program plus a render pool.

    python -m launch.main --config=configs/tiny_grpo_svg.py --workdir=DIR

Per step: draw P tasks, roll out G samples each (sampling on device, rendering
on host processes in parallel), score them, then take `grpo.epochs` passes over
the rollout in `grpo.mini_batches` shuffled optimizer updates each (KL to the
frozen initial policy when `grpo.kl_coef > 0`). Orbax checkpoints hold the
policy, optimizer, task-iterator state and step; keys are derived from the step,
so a resumed run repeats an uninterrupted one. On several hosts each one rolls
out its block of every micro-batch with its own render pool; the run is the same
as on one host.

Behaviour log-probs: the ratio's old log-probs are the sampler's exact log-probs
of the processed distribution it drew from (temperature, top-k, top-p, suppressed
ids), and the new ones apply the same processing to the current policy's logits
(`grpo.train_distribution="sampling"`). With "model" the ratio is taken under the
tempered full-vocabulary distribution and truncated importance weights correct
for the sampler's (verl's rollout correction). Either way `rollout_logprob_diff/*`
logs |behaviour - trainer log-prob| of the pre-update policy over response tokens.

This module only composes: the set-up, resume and metric loop both trainers share are
`policy.training_run.TrainingRun`; the roles of a step are `rl.rollout_stream.RolloutStream`
(rollouts), `rl.models.prepare_reward` (the reward's models) and `rl.policy_update.PolicyUpdate`
(the update), each built and tested alone.
"""
from __future__ import annotations

import logging
import time

import jax
import numpy as np

import render
from policy import paths
from policy.config_error import ConfigError
from policy.host_batch import gather_rows
from policy.sampler import Sampler
from policy.sampling import SamplingParams
from policy.train_state import merge_model
from policy.training_run import TrainingRun
from rl import run_record
from rl.grpo import GRPOConfig
from rl.models import prepare_policy, prepare_reward
from rl.optimizers import grpo_optimizers
from rl.policy_update import PolicyUpdate, make_grpo_steps
from rl.rollout import RolloutWorker, rollout_metrics
from rl.rollout_stream import RolloutStream
from rl.task_mix import make_task_dataset

log = logging.getLogger(__name__)


def check_config(config, grpo: GRPOConfig) -> None:
    """Refuse settings GRPO cannot train with, before anything is built (`launch.config_check` calls this
    too, beside its checks of paths and the other trainers' keys)."""
    if config.group_size < 2:
        raise ConfigError("group_size", config.group_size, "a group's baseline is its own mean", "integers >= 2")
    if config.sampling.temperature <= 0:
        raise ConfigError("sampling.temperature", config.sampling.temperature, "greedy groups are identical", "> 0")
    hosts = jax.process_count()
    for key, size, parts, why in (
            ("prompts_per_step", config.prompts_per_step, config.micro_batches * hosts,
             f"micro_batches={config.micro_batches} x {hosts} host(s)"),
            ("warmstart.batch_size", config.warmstart.batch_size, hosts, f"{hosts} host(s)")):
        if size % parts:
            raise ConfigError(key, size, f"must split into {parts} equal parts ({why})", f"multiples of {parts}")
    rows = config.prompts_per_step * config.group_size // hosts
    parts = grpo.loop.micro_steps
    if rows % parts:
        raise ConfigError("grpo.mini_batches", grpo.loop.mini_batches, f"{rows} rollout rows per host "
                          f"(prompts_per_step x group_size / hosts) do not split into grpo.mini_batches x "
                          f"grpo.grad_accumulation = {parts} equal parts",
                          f"mini_batches x grad_accumulation dividing {rows}")
    if grpo.loop.dynamic_sampling and hosts > 1:
        raise NotImplementedError("dynamic sampling refills groups per host; hosts would then train on "
                                  "different numbers of draws (not agreed across hosts yet)")


class GRPOTrainer:
    """One GRPO run: the scaffold every trainer shares (`run`: workdir, mesh, model, processor, train
    state, checkpointer, metric writer) and the three roles of a step: `rollouts` (tasks -> sampled,
    rendered, scored groups), the reward's models (`rl.models.prepare_reward`, inside the rollout
    worker) and `update` (rollout -> optimizer updates)."""

    def __init__(self, config, workdir: str):
        self.config, self.grpo = config, GRPOConfig.from_block(config.grpo)
        check_config(config, self.grpo)
        self.run = run = TrainingRun(config, workdir)
        self.pool = render.RenderPool(workers=config.render_workers, allow_weak_sandbox=config.allow_weak_sandbox)
        tx, warm_tx = grpo_optimizers(config)
        # Step 0 is the policy RL starts from (after any warm start): kept, so before and after RL can be
        # compared by anyone (`launch.export_hf --step=0`).
        run.load(prepare_policy(config, run.workdir, self.pool), tx, keep_steps=(0,), max_side=config.max_side,
                 seq_buckets=tuple(config.seq_buckets))
        processor = run.processor
        temperature = float(config.sampling.temperature)
        params = SamplingParams(temperature=temperature, top_p=config.sampling.top_p, top_k=config.sampling.top_k,
                                suppress_ids=(processor.image_token_id, processor.vision_start_token_id))
        steps = make_grpo_steps(config, self.grpo, run.parts, tx, warm_tx, run.state, params)
        tokenizer = processor.tokenizer
        stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self.sampler = Sampler(merge_model(run.parts, run.state.params), pad_id=processor.pad_token_id,
                               stop_ids=stops, mesh=run.mesh, patch_buckets=tuple(config.patch_buckets))
        judge, deps = prepare_reward(config, run.workdir, run.mesh, self.pool, self.sampler.model,
                                     processor.image_processor)
        worker = RolloutWorker(self.sampler, processor, self.pool, reward=config.reward, group_size=config.group_size,
                               max_new_tokens=config.max_new_tokens, params=params, judge=judge,
                               micro_batches=config.micro_batches, reward_deps=deps, overlap=config.overlap)
        tasks = make_task_dataset(config.tasks, seed=config.seed, renderer=self.pool)
        self.rollouts = RolloutStream(worker, iter(tasks.to_iter_dataset()), processor, self.grpo.loop,
                                      seed=config.seed, prompts_per_step=config.prompts_per_step,
                                      micro_batches=config.micro_batches, group_size=config.group_size)
        run.track("tasks", self.rollouts.task_iter)
        self.update = PolicyUpdate(run, steps, self.grpo.loop, warm_tx, seed=config.seed,
                                   group_size=config.group_size, max_new_tokens=config.max_new_tokens,
                                   patch_buckets=tuple(config.patch_buckets))
        self.warm_start_losses: list[float] = []  # recorded by `train` (warmstart/)

    def sync_policy(self) -> None:
        """Point the sampler's model at the current parameters (no recompilation)."""
        self.sampler.model = merge_model(self.run.parts, self.run.state.params)

    def rl_step(self, step: int) -> dict:
        start = time.perf_counter()
        self.sync_policy()
        rollout, metrics = self.rollouts(step)
        host = time.perf_counter()
        metrics.update(rollout_metrics(rollout))
        metrics.update(self.update(step, rollout))
        metrics["overlong_fraction"] = float(np.mean(gather_rows(~rollout.stopped)))
        metrics["time/update"] = time.perf_counter() - host
        metrics["time/step"] = time.perf_counter() - start
        return metrics

    def start(self) -> int:
        """Resume from the newest good checkpoint, or warm-start; fixes the KL reference. Returns the step."""
        step = self.run.restore()
        if step is None:
            step = 0
            warm = self.config.warmstart
            if warm.steps:
                self.warm_start_losses = self.update.warm_start(self.rollouts.draw, warm.steps, warm.batch_size)
            self.run.save(0)
        if self.grpo.loss.kl_coef:
            self.update.fix_reference()
        return step

    def close(self) -> None:
        self.run.close()
        self.rollouts.close()
        self.pool.close()


def _heldout(config, trainer):
    """The held-out evaluation `config.heldout` asks for (rl/heldout.py), or None."""
    spec = config.heldout
    if not spec.n:
        return None
    from rl.heldout import HeldOutEval, heldout_tasks

    return HeldOutEval(heldout_tasks(spec.tasks, trainer.pool, spec.n), max_new_tokens=config.max_new_tokens)


class PolicyIgnoresImageError(RuntimeError):
    """RL would start from a policy whose answers do not depend on its image (see `check_image_dependence`)."""


def check_image_dependence(before: dict, threshold: float) -> None:
    """Refuse RL from a policy that draws about as well for a shuffled target as for its own: GRPO
    cannot teach such a policy to read the image with a handful of samples per target."""
    if not threshold or "heldout/iou" not in before:
        return
    gain = before["heldout/iou"] - before["heldout/iou_shuffled"]
    if gain < threshold:
        raise PolicyIgnoresImageError(
            f"the policy RL would start from ignores its image: held-out IoU {before['heldout/iou']:.3f} against "
            f"its own targets, {before['heldout/iou_shuffled']:.3f} against shuffled ones (dependence {gain:.3f} < "
            f"heldout.min_image_dependence={threshold}); warm-start it longer (--config.warmstart.steps) or start "
            "from a warm-started policy (--config.model.checkpoint)")


def train(config, workdir: str) -> dict:
    """Run (or resume) GRPO as `config` says; returns the last metrics record."""
    trainer = GRPOTrainer(config, workdir)
    run = trainer.run
    try:
        start = trainer.start()
        run_record.record_warm_start(run.workdir, trainer.warm_start_losses)
        heldout = _heldout(config, trainer)
        writer = run.open_log(start, "grpo")
        before = run_record.saved_start(writer.path) if start else {}  # the true start survives a resume
        if heldout and not before:
            before = heldout(trainer, f"step {start}")
        if heldout and start == 0:
            check_image_dependence(before, config.heldout.min_image_dependence)
        every = config.heldout.every if heldout else 0

        def evaluates(step: int) -> bool:
            return bool(heldout) and (step == config.total_steps or bool(every and step % every == 0))

        def step_metrics(step: int) -> dict:
            metrics = trainer.rl_step(step)
            if step == 1:
                metrics.update({f"{k}/start": v for k, v in before.items()})
                metrics.update(heldout.baselines() if heldout else {})
            if evaluates(step):
                log.info("held-out evaluation at step %d (%d tasks)", step, len(heldout.tasks))
                metrics.update(heldout(trainer, f"step {step}"))
            return metrics

        def record_samples(step: int) -> None:
            if evaluates(step):
                run_record.record_samples(writer, heldout, f"step {step}", step, trainer.rollouts.worker.judge)

        record = run.run_steps(start, step_metrics, shown="reward_mean", after_write=record_samples)
        record.update({f"{k}/start": v for k, v in before.items()})
        if heldout:
            if start == config.total_steps:  # no RL step ran: the policy after is the policy at the start
                record.update(before)
            record.update(heldout.baselines())
        if heldout and jax.process_index() == 0:
            heldout.contact_sheet(paths.join(run.workdir, "heldout.png"))
        run.plot("reward.png", ("reward_mean",), f"GRPO reward ({config.reward})")
        return record
    finally:
        trainer.close()
