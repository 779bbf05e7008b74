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
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

import render
from policy import checkpointing, metric_writers, paths
from policy.config import runtime_options
from policy.hf_io import load_pretrained
from policy.host_batch import device_batch, gather_rows, process_rows
from policy.learning_rate import last_learning_rate
from policy.logprobs import masked_nll, teacher_forced_logprobs
from policy.processor import Processor
from policy.sampler import Sampler
from policy.sampling import SamplingParams, process_logits
from policy.sharding import mesh_from_config
from policy.train_state import init_opt_state, init_train_state, make_train_step, merge_model, state_shardings
from rl import run_record
from rl.batch import build_batch
from rl.grpo import GRPOConfig, GRPOLoop, GRPOLoss, group_advantages, grpo_loss, overlong_soft_penalty
from rl.models import prepare_judge, prepare_policy
from rl.optimizers import grpo_optimizers
from rl.rollout import RolloutWorker, rollout_metrics, select_groups
from rl.task_mix import make_task_dataset

log = logging.getLogger(__name__)


def completion_logprobs(model, batch, *, chunk_size, temperature, process=None, also_tempered=False):
    """Teacher-forced log-probs (and entropies) [N, T-1] of the batch's targets (see policy.logprobs)."""
    return teacher_forced_logprobs(model, batch, chunk_size=chunk_size, temperature=temperature, process=process,
                                   also_tempered=also_tempered)


def grpo_loss_fn(model, batch, rng, *, loss: GRPOLoss, chunk_size, temperature, process=None, max_length=None):
    """The GRPO loss of one (mini-)batch (`rl.grpo.grpo_loss`). The KL term compares the tempered
    full-vocabulary distributions of policy and reference (a processed one would put most tokens
    outside the reference's support); the ratio uses `process`'s distribution when given."""
    del rng
    kl = bool(loss.kl_coef)
    if kl and "ref_logprobs" not in batch:
        raise KeyError("grpo.kl_coef > 0 needs the reference policy's log-probs in batch['ref_logprobs']")
    out = completion_logprobs(model, batch, chunk_size=chunk_size, temperature=temperature, process=process,
                              also_tempered=kl and process is not None)
    logprobs, entropy = out[:2]
    target_mask = batch["target_mask"]
    mask = target_mask * batch["valid"][:, None]
    kl_mask = target_mask * batch["rows"][:, None] if loss.kl_on_all_tokens else mask
    value, metrics = grpo_loss(logprobs, batch["old_logprobs"], batch["advantages"], mask, loss,
                               batch.get("ref_logprobs"), kl_mask=kl_mask, kl_logprobs=out[2] if len(out) > 2 else None,
                               is_weights=batch.get("is_weights"), max_length=max_length)
    tokens = jnp.maximum(target_mask.sum(), 1)
    metrics["entropy"] = (entropy * target_mask).sum() / tokens
    return value, metrics


def sft_loss_fn(model, batch, rng, *, chunk_size):
    del rng
    logprobs, _ = completion_logprobs(model, batch, chunk_size=chunk_size, temperature=1.0)
    return masked_nll(logprobs, batch["target_mask"]), {}


def rollout_advantages(rewards, lengths, stopped, loop: GRPOLoop, group_size: int,
                       max_new_tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(advantages, valid, rows) [N] float32 for a rollout's rewards: overlong shaping first, then
    group-normalised advantages; `valid` marks rows the policy term trains on, `rows` rows any term
    (the KL on every response token) may touch (overlong="mask" drops cut-off responses from both)."""
    rewards = np.asarray(rewards, np.float32)
    rows = np.ones(len(rewards), np.float32)
    if loop.overlong == "soft_penalty":
        rewards = rewards + overlong_soft_penalty(lengths, max_new_tokens, loop.overlong_buffer,
                                                  loop.overlong_penalty)
    elif loop.overlong == "mask":
        rows = np.asarray(stopped, np.float32)
    advantages, valid = (np.asarray(x) for x in group_advantages(
        jnp.asarray(rewards), group_size, normalize_std=loop.normalize_std, eps=loop.eps))
    return advantages, valid * rows, rows


class GRPOSteps(NamedTuple):
    """The jitted programs of a GRPO run, built the same way for the run and for `launch.aot`."""

    update: Any  # (state, batch) -> (state, metrics): one optimizer update on a (mini-)batch
    warm_start: Any  # (state, batch) -> (state, metrics): a supervised warm-start step
    logprobs: Any  # (params, batch) -> [B, T-1] log-probs under the ratio's distribution
    tempered_logprobs: Any  # (params, batch) -> [B, T-1] tempered full-vocabulary log-probs (the KL reference's)


def make_grpo_steps(config, grpo: GRPOConfig, parts, tx, warm_tx, state,
                    sampling_params: SamplingParams) -> GRPOSteps:
    """The run's jitted programs (`state` may be abstract, as `launch.aot` passes it)."""
    temperature = float(config.sampling.temperature)
    chunk = config.get("loss_chunk_size")
    process = (functools.partial(process_logits, params=sampling_params)
               if grpo.loop.train_distribution == "sampling" else None)
    update = make_train_step(
        parts, tx, lambda m, b, r: grpo_loss_fn(m, b, r, loss=grpo.loss, chunk_size=chunk, temperature=temperature,
                                                process=process, max_length=config.max_new_tokens),
        state_shardings(state))
    warm_start = make_train_step(parts, warm_tx, lambda m, b, r: sft_loss_fn(m, b, r, chunk_size=chunk),
                                 state_shardings(state))
    logprobs = jax.jit(lambda params, b: completion_logprobs(
        merge_model(parts, params), b, chunk_size=chunk, temperature=temperature, process=process)[0])
    tempered = jax.jit(lambda params, b: completion_logprobs(
        merge_model(parts, params), b, chunk_size=chunk, temperature=temperature)[0])
    return GRPOSteps(update, warm_start, logprobs, tempered)


class GRPOTrainer:
    """Holds the mesh, models, pool and jitted functions of one run."""

    def __init__(self, config, workdir: str):
        self.config, self.workdir = config, paths.resolve(workdir)
        checkpointing.write_config(self.workdir, config)
        self.grpo = GRPOConfig.from_block(config.grpo)
        self._check(config)
        self.mesh = mesh_from_config(config)
        hosts = jax.process_count()
        for name, size, parts in (("prompts_per_step", config.prompts_per_step, config.micro_batches),
                                  ("warmstart.batch_size", config.warmstart.batch_size, 1)):
            if hosts > 1 and size % (parts * hosts):
                raise ValueError(f"{name}={size} is a global batch: its {parts} micro-batch(es) must divide "
                                 f"evenly over {hosts} hosts")
        self.pool = render.RenderPool(workers=config.render_workers, allow_weak_sandbox=config.allow_weak_sandbox)
        policy_dir = prepare_policy(config, self.workdir, self.pool)
        self.model_config, model = load_pretrained(policy_dir, mesh=self.mesh, **runtime_options(config.model))
        self.processor = Processor.from_pretrained(policy_dir, max_side=config.max_side,
                                                   seq_buckets=tuple(config.seq_buckets))
        self.tx, self.warm_tx = grpo_optimizers(config)
        self.parts, self.state = init_train_state(model, self.tx, seed=config.seed, mesh=self.mesh)
        # Warm start runs with its own optimizer; the RL optimizer state is put back after it.
        self.ref_params = None  # set by `start`
        self.temperature = float(config.sampling.temperature)
        self.sampling_params = SamplingParams(
            temperature=self.temperature, top_p=config.sampling.top_p, top_k=config.sampling.top_k,
            suppress_ids=(self.processor.image_token_id, self.processor.vision_start_token_id))
        self._model_for_shardings = model
        steps = make_grpo_steps(config, self.grpo, self.parts, self.tx, self.warm_tx, self.state, self.sampling_params)
        self.step_fn, self.sft_step = steps.update, steps.warm_start
        self.logprob_fn, self.tempered_logprob_fn = steps.logprobs, steps.tempered_logprobs
        tokenizer = self.processor.tokenizer
        stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self.policy = merge_model(self.parts, self.state.params)
        self.sampler = Sampler(self.policy, pad_id=self.processor.pad_token_id, stop_ids=stops, mesh=self.mesh,
                               patch_buckets=tuple(config.patch_buckets))
        judge = prepare_judge(config, self.workdir, self.mesh, self.pool) if config.reward == "visual_erm" else None
        deps = {}
        if config.reward == "embedding_cosine":
            from rl.rewards import VisionEmbedder

            deps["embedder"] = VisionEmbedder(self.policy, self.processor.image_processor)
        deps.update(config.get("reward_params", {}))
        self.worker = RolloutWorker(self.sampler, self.processor, self.pool, reward=config.reward,
                                    group_size=config.group_size, max_new_tokens=config.max_new_tokens,
                                    params=self.sampling_params, judge=judge, micro_batches=config.micro_batches,
                                    reward_deps=deps, overlap=config.overlap)
        # Every host reads the same global task stream and keeps its block of every micro-batch
        # (`_draw`): each sampler call, and so the run, is the same on one host or many, and the
        # iterator state is the same on every host. The price: each host materialises every task.
        tasks = make_task_dataset(config.tasks, seed=config.seed, renderer=self.pool)
        self.task_iter = iter(tasks.to_iter_dataset())
        # Step 0 is the policy RL starts from (after any warm start): kept, so before and after RL can be
        # compared by anyone (`launch.export_hf --step=0`).
        self.checkpointer = checkpointing.Checkpointer(paths.join(self.workdir, "checkpoints"),
                                                       max_to_keep=config.keep_checkpoints, keep_steps=(0,))

    def _check(self, config) -> None:
        """Refuse settings GRPO cannot train with, before anything is built."""
        if config.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (a group's baseline is its own mean), got {config.group_size}")
        if config.sampling.temperature <= 0:
            raise ValueError("GRPO samples: sampling.temperature must be > 0 (greedy groups are identical)")
        hosts = jax.process_count()
        rows = config.prompts_per_step * config.group_size // hosts
        parts = self.grpo.loop.micro_steps
        if rows % parts:
            raise ValueError(f"{rows} rollout rows per host do not split into grpo.mini_batches x "
                             f"grpo.grad_accumulation = {parts} equal parts")
        if self.grpo.loop.dynamic_sampling and hosts > 1:
            raise NotImplementedError("dynamic sampling refills groups per host; hosts would then train on "
                                      "different numbers of draws (not agreed across hosts yet)")

    def _draw(self, global_size: int, micro_batches: int = 1) -> list:
        """This host's share of the next global batch of tasks: its block of every micro-batch, so each
        micro-batch (one sampler call, all hosts together) holds the tasks it holds on one host."""
        tasks = [next(self.task_iter) for _ in range(global_size)]
        hosts, me = jax.process_count(), jax.process_index()
        return [tasks[i] for part in np.array_split(np.arange(global_size), micro_batches)
                for i in np.array_split(part, hosts)[me]]

    def _batch(self, prompt, tokens, lengths, group_size, **kwargs):
        return build_batch(self.model_config, prompt, tokens, lengths, group_size,
                           patch_buckets=tuple(self.config.patch_buckets), pad_id=self.processor.pad_token_id, **kwargs)

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
        losses = []
        log.info("warm start: %d supervised steps of %d tasks", cfg.steps, cfg.batch_size)
        for _ in tqdm.trange(cfg.steps, desc="warm start", unit="step", disable=jax.process_index() != 0):
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
            losses.append(metrics["loss"])
        self.warm_start_losses = [float(loss) for loss in losses]  # recorded by `train` (warmstart/)
        self.state = self.state.replace(step=jnp.zeros_like(self.state.step), opt_state=rl_opt_state)
        log.info("warm start done: sft loss %.4f", float(metrics["loss"]))

    def _rollout(self, step: int) -> tuple:
        """This step's scored rollout; with dynamic sampling, groups whose rewards are all equal are
        dropped and more prompts rolled out (at most `max_sampling_rounds` rollouts) until
        `prompts_per_step` groups carry signal; short of that, dropped groups fill the batch."""
        cfg, grpo = self.config, self.grpo.loop
        key = jax.random.fold_in(jax.random.key(cfg.seed), step)
        rollout = self.worker(self._draw(cfg.prompts_per_step, cfg.micro_batches), key)
        if not grpo.dynamic_sampling:
            return rollout, {}
        parts, kept, dropped = [rollout], [], []
        for round_index in range(grpo.max_sampling_rounds):
            if round_index:
                parts.append(self.worker(self._draw(cfg.prompts_per_step, cfg.micro_batches),
                                         jax.random.fold_in(key, round_index)))
            rewards = parts[-1].rewards.reshape(-1, cfg.group_size)
            for group, signal in enumerate(rewards.std(axis=1) > grpo.eps):
                (kept if signal else dropped).append((round_index, group))
            if len(kept) >= cfg.prompts_per_step:
                break
        chosen = (kept + dropped)[:cfg.prompts_per_step]
        merged = select_groups(parts, chosen, self.processor)
        return merged, {"dynamic_sampling/rounds": float(len(parts)),
                        "dynamic_sampling/signal_groups": float(min(len(kept), cfg.prompts_per_step))}

    def rl_step(self, step: int) -> dict:
        cfg, grpo = self.config, self.grpo.loop
        start = time.perf_counter()
        self._sync_policy()
        rollout, metrics = self._rollout(step)
        host = time.perf_counter()
        advantages, valid, rows = rollout_advantages(rollout.rewards, rollout.lengths, rollout.stopped, grpo,
                                                     cfg.group_size, cfg.max_new_tokens)
        per_row = {"advantages": advantages, "valid": valid, "rows": rows}
        logprobs = self._row_logprobs(rollout)
        old, behaviour, target_mask = logprobs["old"], logprobs["behaviour"], logprobs["target_mask"]
        gap = np.abs(behaviour - old) * target_mask
        totals = gather_rows(np.array([[gap.sum(), target_mask.sum(), gap.max(initial=0.0)]], np.float64))
        metrics["rollout_logprob_diff/mean"] = float(totals[:, 0].sum() / max(totals[:, 1].sum(), 1))
        metrics["rollout_logprob_diff/max"] = float(totals[:, 2].max())
        if grpo.train_distribution == "sampling":
            per_row["old_logprobs"] = behaviour
        else:
            per_row["old_logprobs"] = old
            per_row["is_weights"] = np.minimum(np.exp(old - behaviour), grpo.tis_cap) * target_mask
        if "ref" in logprobs:
            per_row["ref_logprobs"] = logprobs["ref"]
        updates = self._updates(step, rollout, per_row)
        metrics.update(rollout_metrics(rollout))
        metrics.update({k: float(np.mean([u[k] for u in updates])) for k in updates[0]})
        metrics["valid_groups"] = float(np.mean(gather_rows(valid)))
        metrics["overlong_fraction"] = float(np.mean(gather_rows(~rollout.stopped)))
        metrics["time/update"] = time.perf_counter() - host
        metrics["time/step"] = time.perf_counter() - start
        return metrics

    def _part_batch(self, rollout, per_row: dict, part: np.ndarray, **kwargs) -> dict:
        """The host batch of this host's rollout rows `part` (`build_batch`, with `kwargs`), with their
        rows of the `per_row` arrays."""
        group_size = self.config.group_size
        sub = self._batch(rollout.prompt, rollout.tokens[part], rollout.lengths[part], group_size,
                          rows=part // group_size, **kwargs)
        sub.update({k: v[part] for k, v in per_row.items()})
        return sub

    def _row_logprobs(self, rollout) -> dict[str, np.ndarray]:
        """Target-aligned [n, T-1] arrays of this host's rollout rows: "old" (and "ref" with a KL
        reference) log-probs, the sampler's "behaviour" log-probs and the "target_mask". Computed one
        micro-step's rows at a time: a forward over a whole 8B rollout does not fit a chip (rl/aot.py)."""
        out = {"old": [], "ref": [], "behaviour": [], "target_mask": []}
        for part in np.array_split(np.arange(len(rollout.tokens)), self.grpo.loop.micro_steps):
            sub = self._part_batch(rollout, {}, part, behaviour_logprobs=rollout.sample_logprobs[part])
            out["behaviour"].append(sub.pop("behaviour_logprobs"))
            out["target_mask"].append(sub["target_mask"])
            # On several hosts rows are padded to an agreed width (device_batch): cut back to this host's.
            width, batch = sub["target_mask"].shape[1], device_batch(sub, self.mesh)
            out["old"].append(process_rows(self.logprob_fn(self.state.params, batch), len(part))[:, :width])
            if self.ref_params is not None:
                ref = self.tempered_logprob_fn(self.ref_params, batch)
                out["ref"].append(process_rows(ref, len(part))[:, :width])
        return {k: np.concatenate(v) for k, v in out.items() if v}

    def _updates(self, step: int, rollout, per_row: dict) -> list[dict]:
        """`grpo.epochs` passes of `grpo.mini_batches` optimizer updates (each of
        `grpo.grad_accumulation` micro-steps); per-step metrics of every micro-step. `per_row` holds
        host arrays [n, ...] of this host's rows (advantages, old log-probs, ...) that go with each row."""
        n, order, out = len(rollout.tokens), np.random.default_rng([self.config.seed, step]), []
        for _ in range(self.grpo.loop.epochs):
            rows = order.permutation(n) if self.grpo.loop.shuffle and self.grpo.loop.micro_steps > 1 else np.arange(n)
            for part in np.split(rows, self.grpo.loop.micro_steps):
                batch = device_batch(self._part_batch(rollout, per_row, part), self.mesh)
                self.state, metrics = self.step_fn(self.state, batch)
                out.append(metrics)
        return [{k: float(v) for k, v in m.items()} for m in out]

    def start(self) -> int:
        """Resume from the newest good checkpoint, or warm-start; fixes the KL reference. Returns the step."""
        abstract = checkpointing.abstract_like(self.state)
        reference = checkpointing.Checkpointer(paths.join(self.workdir, "reference_policy"), max_to_keep=1)
        restored = self.checkpointer.restore(abstract)
        if restored is not None:
            step, self.state, extra = restored
            self.task_iter.set_state(extra["tasks"])
        else:
            step = 0
            if self.config.warmstart.steps:
                self.warm_start()
            self.checkpointer.save(0, self.state, {"tasks": self.task_iter.get_state()})
        if self.grpo.loss.kl_coef:
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
        self.worker.close()
        self.pool.close()


def _heldout(config, trainer):
    """The held-out evaluation `config.heldout` asks for (rl/heldout.py), or None."""
    spec = config.get("heldout")
    if not spec or not spec.n:
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
    try:
        start = trainer.start()
        run_record.record_warm_start(trainer.workdir, getattr(trainer, "warm_start_losses", []))
        heldout = _heldout(config, trainer)
        writer = metric_writers.MetricWriter(trainer.workdir, resume_step=start, writers=config.get("writers"),
                                             run_config=config)
        before = run_record.saved_start(writer.path) if start else {}  # the true start survives a resume
        if heldout and not before:
            before = heldout(trainer, f"step {start}")
        if heldout and start == 0:
            check_image_dependence(before, config.heldout.min_image_dependence)
        every = config.heldout.get("every", 0) if heldout else 0
        progress = metric_writers.Progress(config.total_steps, start, desc="grpo")
        record = {}
        for step in range(start + 1, config.total_steps + 1):
            metrics = trainer.rl_step(step)
            metrics["learning_rate"] = last_learning_rate(config.optimizer, trainer.state.opt_state)
            if step == 1:
                metrics.update({f"{k}/start": v for k, v in before.items()})
                metrics.update(heldout.baselines() if heldout else {})
            evaluate = heldout and (step == config.total_steps or (every and step % every == 0))
            if evaluate:
                log.info("held-out evaluation at step %d (%d tasks)", step, len(heldout.tasks))
                metrics.update(heldout(trainer, f"step {step}"))
            record = writer.write(step, metrics)
            if evaluate:
                run_record.record_samples(writer, heldout, f"step {step}", step, trainer.worker.judge)
            progress.update(1, reward=metrics["reward_mean"])
            if step % config.checkpoint_every == 0 or step == config.total_steps:
                trainer.checkpointer.save(step, trainer.state, {"tasks": trainer.task_iter.get_state()})
        progress.close()
        writer.close()
        record.update({f"{k}/start": v for k, v in before.items()})
        if heldout:
            if start == config.total_steps:  # no RL step ran: the policy after is the policy at the start
                record.update(before)
            record.update(heldout.baselines())
        if jax.process_index() == 0:
            if heldout:
                heldout.contact_sheet(paths.join(trainer.workdir, "heldout.png"))
            metric_writers.plot_curves(paths.join(trainer.workdir, "metrics.jsonl"),
                                       paths.join(trainer.workdir, "reward.png"), ("reward_mean",),
                                       title=f"GRPO reward ({config.reward})")
        return record
    finally:
        trainer.close()
