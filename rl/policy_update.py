"""The update role of a GRPO step: from a scored rollout to optimizer updates of the policy.

Host: overlong shaping and group-normalised advantages (`rollout_advantages`); per micro-step's rows,
the pre-update policy's log-probs (and the KL reference's) and their gap to the sampler's behaviour
log-probs (`rollout_logprob_diff/*`); the ratio's old log-probs and importance weights
(`grpo.train_distribution`). Device: `grpo.epochs` passes of `grpo.mini_batches` updates of
`grpo.grad_accumulation` micro-steps, each one call of the jitted update (`grpo_loss_fn`). Also the
supervised warm start before RL, and the KL reference RL starts from.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from policy import checkpointing, paths
from policy.host_batch import device_batch, gather_rows, process_rows
from policy.logprobs import sft_loss, teacher_forced_logprobs
from policy.sampling import SamplingParams, process_logits
from policy.train_state import init_opt_state, make_train_step, merge_model, state_shardings
from rl.batch import build_batch
from rl.grpo import GRPOConfig, GRPOLoop, GRPOLoss, group_advantages, grpo_loss, overlong_soft_penalty
from rl.rollout import policy_messages
from visual_erm.prompts import code_language

log = logging.getLogger(__name__)


def grpo_loss_fn(model, batch, rng, *, loss: GRPOLoss, chunk_size, temperature, process=None, max_length=None):
    """The GRPO loss of one (mini-)batch (`rl.grpo.grpo_loss`). The KL term compares the tempered
    full-vocabulary distributions of policy and reference (a processed one would put most tokens
    outside the reference's support); the ratio uses `process`'s distribution when given."""
    del rng
    kl = bool(loss.kl_coef)
    if kl and "ref_logprobs" not in batch:
        raise KeyError("grpo.kl_coef > 0 needs the reference policy's log-probs in batch['ref_logprobs']")
    out = teacher_forced_logprobs(model, batch, chunk_size=chunk_size, temperature=temperature, process=process,
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
    chunk = config.loss_chunk_size
    process = (functools.partial(process_logits, params=sampling_params)
               if grpo.loop.train_distribution == "sampling" else None)
    update = make_train_step(parts, tx, functools.partial(
        grpo_loss_fn, loss=grpo.loss, chunk_size=chunk, temperature=temperature, process=process,
        max_length=config.max_new_tokens), state_shardings(state))
    warm_start = make_train_step(parts, warm_tx, functools.partial(sft_loss, chunk_size=chunk), state_shardings(state))

    def logprobs(params, batch, process=process):
        return teacher_forced_logprobs(merge_model(parts, params), batch, chunk_size=chunk, temperature=temperature,
                                       process=process)[0]

    return GRPOSteps(update, warm_start, jax.jit(logprobs), jax.jit(functools.partial(logprobs, process=None)))


class PolicyUpdate:
    """Moves the run's train state (`policy.training_run.TrainingRun.state`) on each scored rollout."""

    def __init__(self, run, steps: GRPOSteps, loop: GRPOLoop, warm_tx, model, *, seed: int, group_size: int,
                 max_new_tokens: int, patch_buckets: tuple[int, ...]):
        self.run, self.steps, self.loop, self.warm_tx = run, steps, loop, warm_tx
        self._model_for_shardings = model  # the warm start's optimizer state takes the parameters' shardings
        self.seed, self.group_size, self.max_new_tokens, self.patch_buckets = (seed, group_size, max_new_tokens,
                                                                               patch_buckets)
        self.ref_params = None  # the KL reference's parameters (`fix_reference`)

    def batch(self, prompt, tokens, lengths, group_size, **kwargs) -> dict:
        """The host batch of prompts and completions (`rl.batch.build_batch`)."""
        return build_batch(self.run.model_config, prompt, tokens, lengths, group_size,
                           patch_buckets=self.patch_buckets, pad_id=self.run.processor.pad_token_id, **kwargs)

    def __call__(self, step: int, rollout) -> dict:
        """Train on this step's rollout; metrics of the log-prob gap, the updates (averaged) and the
        groups that carried signal."""
        loop, metrics = self.loop, {}
        advantages, valid, rows = rollout_advantages(rollout.rewards, rollout.lengths, rollout.stopped, loop,
                                                     self.group_size, self.max_new_tokens)
        per_row = {"advantages": advantages, "valid": valid, "rows": rows}
        logprobs = self.row_logprobs(rollout)
        old, behaviour, target_mask = logprobs["old"], logprobs["behaviour"], logprobs["target_mask"]
        gap = np.abs(behaviour - old) * target_mask
        totals = gather_rows(np.array([[gap.sum(), target_mask.sum(), gap.max(initial=0.0)]], np.float64))
        metrics["rollout_logprob_diff/mean"] = float(totals[:, 0].sum() / max(totals[:, 1].sum(), 1))
        metrics["rollout_logprob_diff/max"] = float(totals[:, 2].max())
        if loop.train_distribution == "sampling":
            per_row["old_logprobs"] = behaviour
        else:
            per_row["old_logprobs"] = old
            per_row["is_weights"] = np.minimum(np.exp(old - behaviour), loop.tis_cap) * target_mask
        if "ref" in logprobs:
            per_row["ref_logprobs"] = logprobs["ref"]
        updates = self.updates(step, rollout, per_row)
        metrics.update({k: float(np.mean([u[k] for u in updates])) for k in updates[0]})
        metrics["valid_groups"] = float(np.mean(gather_rows(valid)))
        return metrics

    def _part_batch(self, rollout, per_row: dict, part: np.ndarray, **kwargs) -> dict:
        """The host batch of this host's rollout rows `part` (`build_batch`, with `kwargs`), with their
        rows of the `per_row` arrays."""
        sub = self.batch(rollout.prompt, rollout.tokens[part], rollout.lengths[part], self.group_size,
                         rows=part // self.group_size, **kwargs)
        sub.update({k: v[part] for k, v in per_row.items()})
        return sub

    def row_logprobs(self, rollout) -> dict[str, np.ndarray]:
        """Target-aligned [n, T-1] arrays of this host's rollout rows: "old" (and "ref" with a KL
        reference) log-probs, the sampler's "behaviour" log-probs and the "target_mask". Computed one
        micro-step's rows at a time: a forward over a whole 8B rollout does not fit a chip (rl/aot.py)."""
        out = {"old": [], "ref": [], "behaviour": [], "target_mask": []}
        for part in np.array_split(np.arange(len(rollout.tokens)), self.loop.micro_steps):
            sub = self._part_batch(rollout, {}, part, behaviour_logprobs=rollout.sample_logprobs[part])
            out["behaviour"].append(sub.pop("behaviour_logprobs"))
            out["target_mask"].append(sub["target_mask"])
            # On several hosts rows are padded to an agreed width (device_batch): cut back to this host's.
            width, batch = sub["target_mask"].shape[1], device_batch(sub, self.run.mesh)
            out["old"].append(process_rows(self.steps.logprobs(self.run.state.params, batch), len(part))[:, :width])
            if self.ref_params is not None:
                ref = self.steps.tempered_logprobs(self.ref_params, batch)
                out["ref"].append(process_rows(ref, len(part))[:, :width])
        return {k: np.concatenate(v) for k, v in out.items() if v}

    def updates(self, step: int, rollout, per_row: dict) -> list[dict]:
        """`grpo.epochs` passes of `grpo.mini_batches` optimizer updates (each of
        `grpo.grad_accumulation` micro-steps); per-step metrics of every micro-step. `per_row` holds
        host arrays [n, ...] of this host's rows (advantages, old log-probs, ...) that go with each row."""
        n, order, out = len(rollout.tokens), np.random.default_rng([self.seed, step]), []
        parts = self.loop.micro_steps
        for _ in range(self.loop.epochs):
            rows = order.permutation(n) if self.loop.shuffle and parts > 1 else np.arange(n)
            for part in np.split(rows, parts):
                batch = device_batch(self._part_batch(rollout, per_row, part), self.run.mesh)
                self.run.state, metrics = self.steps.update(self.run.state, batch)
                out.append(metrics)
        return [{k: float(v) for k, v in m.items()} for m in out]

    def warm_start(self, draw: Callable[[int], list], steps: int, batch_size: int) -> list[float]:
        """`steps` supervised steps on (reference image -> reference code) of `draw(batch_size)` tasks, with
        the warm-start optimizer; the RL optimizer state is put back after, the step reset to 0.
        Returns the losses."""
        run, processor = self.run, self.run.processor
        rl_opt_state = run.state.opt_state
        run.state = run.state.replace(opt_state=init_opt_state(self.warm_tx, run.state.params,
                                                               self._model_for_shardings, run.mesh))
        losses = []
        log.info("warm start: %d supervised steps of %d tasks", steps, batch_size)
        for _ in tqdm.trange(steps, desc="warm start", unit="step", disable=jax.process_index() != 0):
            tasks = draw(batch_size)
            prompt = processor([policy_messages(t) for t in tasks], padding_side="left")
            answers = [f"```{code_language(t.kind)}\n{t.reference_code}\n```<|im_end|>" for t in tasks]
            ids = [processor.tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
            width = self.max_new_tokens
            tokens = np.full((len(ids), width), processor.pad_token_id, np.int32)
            for row, seq in enumerate(ids):
                tokens[row, :min(len(seq), width)] = seq[:width]
            lengths = np.array([min(len(seq), width) for seq in ids], np.int32)
            batch = device_batch(self.batch(prompt, tokens, lengths, 1), run.mesh)
            run.state, metrics = self.steps.warm_start(run.state, batch)
            losses.append(metrics["loss"])
        run.state = run.state.replace(step=jnp.zeros_like(run.state.step), opt_state=rl_opt_state)
        log.info("warm start done: sft loss %.4f", float(metrics["loss"]))
        return [float(loss) for loss in losses]

    def fix_reference(self) -> None:
        """The KL reference: the policy RL started from (after any warm start), kept in the workdir's
        `reference_policy/` so a resumed run compares with the same one."""
        state = self.run.state
        reference = checkpointing.Checkpointer(paths.join(self.run.workdir, "reference_policy"), max_to_keep=1)
        saved = reference.restore(checkpointing.abstract_like(state))
        if saved is None:
            reference.save(0, state)
            reference.wait()
            saved = (0, state, {})
        self.ref_params = jax.tree.map(jnp.copy, saved[1].params)
        reference.close()
