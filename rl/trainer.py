"""GRPO with Visual-ERM (or baseline) rewards: one sharded JAX program plus a render pool.

    python -m launch.main --config=configs/tiny_grpo_svg.py --workdir=DIR

Per step: draw P tasks, roll out G samples each (sampling on device, rendering
on host processes in parallel), score them, then take `updates_per_rollout`
optimizer steps of the clipped GRPO loss (KL to the frozen initial policy when
`grpo.kl_coef > 0`). Orbax checkpoints hold the policy, optimizer, task-iterator
state and step; keys are derived from the step, so a resumed run repeats an
uninterrupted one. On several hosts each one rolls out its block of every
micro-batch with its own render pool; the run is the same as on one host.
"""
from __future__ import annotations

import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import render
from policy import checkpointing, metric_writers
from policy.hf_io import load_pretrained
from policy.host_batch import device_batch, gather_rows
from policy.logprobs import token_logprobs
from policy.optimizer import make_optimizer
from policy.processor import Processor
from policy.sampler import Sampler, SamplingParams
from policy.sharding import mesh_from_config
from policy.train_state import init_opt_state, init_train_state, make_train_step, merge_model, state_shardings
from rl.batch import build_batch
from rl.grpo import GRPOConfig, group_advantages, grpo_loss
from rl.models import prepare_judge, prepare_policy
from rl.rollout import RolloutWorker, rollout_metrics
from rl.tasks import make_task_dataset

log = logging.getLogger(__name__)


def completion_logprobs(model, batch, *, chunk_size, temperature):
    hidden, _ = model(batch["input_ids"], batch["positions"], batch["attention_mask"], batch["pixel_values"],
                      batch["vision"], return_hidden=True, patch_start=batch.get("patch_start"))
    return token_logprobs(model, hidden[:, :-1], batch["input_ids"][:, 1:], chunk_size=chunk_size,
                          temperature=temperature)


def grpo_loss_fn(model, batch, rng, *, grpo: GRPOConfig, chunk_size, temperature):
    del rng
    logprobs, entropy = completion_logprobs(model, batch, chunk_size=chunk_size, temperature=temperature)
    mask = batch["loss_mask"] * batch["valid"][:, None]
    loss, metrics = grpo_loss(logprobs, batch["old_logprobs"], batch["advantages"], mask, grpo,
                              batch.get("ref_logprobs"))
    tokens = jnp.maximum(batch["loss_mask"].sum(), 1)
    metrics["entropy"] = (entropy * batch["loss_mask"]).sum() / tokens
    return loss, metrics


def sft_loss_fn(model, batch, rng, *, chunk_size):
    del rng
    logprobs, _ = completion_logprobs(model, batch, chunk_size=chunk_size, temperature=1.0)
    mask = batch["loss_mask"].astype(jnp.float32)
    return -(logprobs * mask).sum() / jnp.maximum(mask.sum(), 1.0), {}


class GRPOTrainer:
    """Holds the mesh, models, pool and jitted functions of one run."""

    def __init__(self, config, workdir: str):
        self.config, self.workdir = config, os.path.abspath(workdir)
        checkpointing.write_config(self.workdir, config)
        self.mesh = mesh_from_config(config)
        hosts = jax.process_count()
        for name, size, parts in (("prompts_per_step", config.prompts_per_step, config.micro_batches),
                                  ("warmstart.batch_size", config.warmstart.batch_size, 1)):
            if hosts > 1 and size % (parts * hosts):
                raise ValueError(f"{name}={size} is a global batch: its {parts} micro-batch(es) must divide "
                                 f"evenly over {hosts} hosts")
        self.pool = render.RenderPool(workers=config.render_workers)
        policy_dir = prepare_policy(config, self.workdir, self.pool)
        self.model_config, model = load_pretrained(policy_dir, dtype=jnp.dtype(config.model.dtype), mesh=self.mesh)
        self.processor = Processor.from_pretrained(policy_dir, max_side=config.max_side,
                                                   seq_buckets=tuple(config.seq_buckets))
        self.tx = make_optimizer(config.optimizer)
        self.parts, self.state = init_train_state(model, self.tx, seed=config.seed, mesh=self.mesh)
        # Warm start runs with its own optimizer; the RL optimizer state is put back after it.
        self.ref_params = None  # set by `start`
        self.grpo = GRPOConfig(**config.grpo.to_dict())
        self.temperature = float(config.sampling.temperature)
        chunk = config.get("loss_chunk_size")
        self.step_fn = make_train_step(
            self.parts, self.tx,
            lambda m, b, r: grpo_loss_fn(m, b, r, grpo=self.grpo, chunk_size=chunk, temperature=self.temperature),
            state_shardings(self.state))
        self.warm_tx = make_optimizer(config.warmstart.optimizer)
        self._model_for_shardings = model
        self.sft_step = make_train_step(self.parts, self.warm_tx,
                                        lambda m, b, r: sft_loss_fn(m, b, r, chunk_size=chunk),
                                        state_shardings(self.state))
        self.logprob_fn = jax.jit(lambda params, b: completion_logprobs(
            merge_model(self.parts, params), b, chunk_size=chunk, temperature=self.temperature)[0])
        tokenizer = self.processor.tokenizer
        stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self.policy = merge_model(self.parts, self.state.params)
        self.sampler = Sampler(self.policy, pad_id=self.processor.pad_token_id, stop_ids=stops, mesh=self.mesh,
                               patch_buckets=tuple(config.patch_buckets))
        params = SamplingParams(temperature=self.temperature, top_p=config.sampling.top_p, top_k=config.sampling.top_k,
                                suppress_ids=(self.processor.image_token_id, self.processor.vision_start_token_id))
        judge = prepare_judge(config, self.workdir, self.mesh, self.pool) if config.reward == "visual_erm" else None
        deps = {}
        if config.reward == "embedding_cosine":
            from rl.rewards import VisionEmbedder

            deps["embedder"] = VisionEmbedder(self.policy, self.processor.image_processor)
        self.worker = RolloutWorker(self.sampler, self.processor, self.pool, reward=config.reward,
                                    group_size=config.group_size, max_new_tokens=config.max_new_tokens,
                                    params=params, judge=judge, micro_batches=config.micro_batches,
                                    reward_deps=deps, overlap=config.overlap)
        # Every host reads the same global task stream and keeps its block of every micro-batch
        # (`_draw`): each sampler call, and so the run, is the same on one host or many, and the
        # iterator state is the same on every host. The price: each host materialises every task.
        tasks = make_task_dataset(config.tasks, seed=config.seed, renderer=self.pool)
        self.task_iter = iter(tasks.to_iter_dataset())
        self.checkpointer = checkpointing.Checkpointer(os.path.join(self.workdir, "checkpoints"),
                                                       max_to_keep=config.keep_checkpoints)

    def _draw(self, global_size: int, micro_batches: int = 1) -> list:
        """This host's share of the next global batch of tasks: its block of every micro-batch, so each
        micro-batch (one sampler call, all hosts together) holds the tasks it holds on one host."""
        tasks = [next(self.task_iter) for _ in range(global_size)]
        hosts, me = jax.process_count(), jax.process_index()
        return [tasks[i] for part in np.array_split(np.arange(global_size), micro_batches)
                for i in np.array_split(part, hosts)[me]]

    def _batch(self, prompt, tokens, lengths, group_size):
        return build_batch(self.model_config, prompt, tokens, lengths, group_size,
                           patch_buckets=tuple(self.config.patch_buckets), pad_id=self.processor.pad_token_id)

    def _sync_policy(self):
        """Point the sampler's model at the current parameters (no recompilation)."""
        self.policy = merge_model(self.parts, self.state.params)
        self.sampler.model = self.policy

    def warm_start(self) -> None:
        """Supervised steps on (reference image -> reference code) before RL, from step 0 only."""
        from rl.rollout import policy_messages
        from visual_erm.prompts import code_language

        cfg = self.config.warmstart
        rl_opt_state = self.state.opt_state
        self.state = self.state.replace(opt_state=init_opt_state(self.warm_tx, self.state.params,
                                                                 self._model_for_shardings, self.mesh))
        for _ in range(cfg.steps):
            tasks = self._draw(cfg.batch_size)
            prompt = self.processor([policy_messages(t) for t in tasks], padding_side="left")
            answers = [f"```{code_language(t.kind)}\n{t.reference_code}\n```<|im_end|>" for t in tasks]
            ids = [self.processor.tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
            width = self.config.max_new_tokens
            tokens = np.full((len(ids), width), self.processor.pad_token_id, np.int32)
            for row, seq in enumerate(ids):
                tokens[row, :min(len(seq), width)] = seq[:width]
            lengths = np.array([min(len(seq), width) for seq in ids], np.int32)
            batch = device_batch(self._batch(prompt, tokens, lengths, 1), self.mesh)
            self.state, metrics = self.sft_step(self.state, batch)
        self.state = self.state.replace(step=jnp.zeros_like(self.state.step), opt_state=rl_opt_state)
        log.info("warm start done: sft loss %.4f", float(metrics["loss"]))

    def rl_step(self, step: int) -> dict:
        cfg = self.config
        start = time.perf_counter()
        tasks = self._draw(cfg.prompts_per_step, cfg.micro_batches)
        self._sync_policy()
        key = jax.random.fold_in(jax.random.key(cfg.seed), step)
        rollout = self.worker(tasks, key)
        host = time.perf_counter()
        advantages, valid = (np.asarray(x) for x in group_advantages(
            jnp.asarray(rollout.rewards), cfg.group_size, normalize_std=self.grpo.normalize_std))
        batch = self._batch(rollout.prompt, rollout.tokens, rollout.lengths, cfg.group_size)
        batch["advantages"], batch["valid"] = advantages, valid
        batch = device_batch(batch, self.mesh)
        batch["old_logprobs"] = self.logprob_fn(self.state.params, batch)
        if self.ref_params is not None:
            batch["ref_logprobs"] = self.logprob_fn(self.ref_params, batch)
        for _ in range(cfg.updates_per_rollout):
            self.state, update = self.step_fn(self.state, batch)
        update = {k: float(v) for k, v in update.items()}
        metrics = rollout_metrics(rollout)
        metrics.update(update)
        metrics["valid_groups"] = float(np.mean(gather_rows(valid)))
        metrics["time/update"] = time.perf_counter() - host
        metrics["time/step"] = time.perf_counter() - start
        return metrics

    def start(self) -> int:
        """Resume from the newest good checkpoint, or warm-start; fixes the KL reference. Returns the step."""
        abstract = checkpointing.abstract_like(self.state)
        reference = checkpointing.Checkpointer(os.path.join(self.workdir, "reference_policy"), max_to_keep=1)
        restored = self.checkpointer.restore(abstract)
        if restored is not None:
            step, self.state, extra = restored
            self.task_iter.set_state(extra["tasks"])
        else:
            step = 0
            if self.config.warmstart.steps:
                self.warm_start()
        if self.config.grpo.kl_coef:
            # The reference is the policy RL started from (after any warm start), kept on disk.
            saved = reference.restore(abstract)
            if saved is None:
                reference.save(0, self.state)
                reference.wait()
                saved = (0, self.state, {})
            self.ref_params = jax.tree.map(jnp.copy, saved[1].params)
        reference.close()
        return step

    def close(self) -> None:
        self.checkpointer.close()
        self.pool.close()


def train(config, workdir: str) -> dict:
    """Run (or resume) GRPO as `config` says; returns the last metrics record."""
    trainer = GRPOTrainer(config, workdir)
    try:
        start = trainer.start()
        writer = metric_writers.MetricWriter(trainer.workdir, resume_step=start)
        progress = metric_writers.Progress(config.total_steps, start, desc="grpo")
        record = {}
        for step in range(start + 1, config.total_steps + 1):
            metrics = trainer.rl_step(step)
            record = writer.write(step, metrics)
            progress.update(1, reward=metrics["reward_mean"])
            if step % config.checkpoint_every == 0 or step == config.total_steps:
                trainer.checkpointer.save(step, trainer.state, {"tasks": trainer.task_iter.get_state()})
        progress.close()
        writer.close()
        if jax.process_index() == 0:
            metric_writers.plot_curves(os.path.join(trainer.workdir, "metrics.jsonl"),
                                       os.path.join(trainer.workdir, "reward.png"), ("reward_mean",),
                                       title=f"GRPO reward ({config.reward})")
        return record
    finally:
        trainer.close()
