"""One GRPO rollout: sample G completions per prompt, render them, judge them, reward them.

Completions are handed to the RenderPool as soon as each micro-batch is
decoded, so host processes render while the device samples the next one
(`overlap=False` gives the strictly sequential loop, for the benchmark).
`RenderPool.submit` blocks while the pool's queue is full, so a dedicated feeder
thread submits: the sampling thread never waits on the pool, and any time the
feeder spends blocked shows up in `time/render_wait` (results cannot arrive
before their submission).
Render failures and unparsable critiques get the rewards their reward function
defines; nothing here raises for bad model output.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from policy.host_batch import gather_rows
from render.errors import ERROR_KINDS
from render.request import KINDS
from rl.extract import ExtractedCode, extract_code
from rl.rewards import RewardInput, is_blank, score_rewards
from visual_erm.schema import Critique


@dataclasses.dataclass
class Rollout:
    tasks: list  # P RLTasks
    group_size: int
    prompt: dict  # Processor output for the P prompts (left padded)
    tokens: np.ndarray  # [P*G, C] completion tokens (pad after the stop token)
    lengths: np.ndarray  # [P*G] generated tokens incl. the stop token
    stopped: np.ndarray  # [P*G] bool: ended on a stop token (False: cut at max_new_tokens)
    sample_logprobs: np.ndarray  # [P*G, C] exact log-probs of the distribution sampled from (0 after stop)
    texts: list[str]
    codes: list[ExtractedCode]
    renders: list  # RenderResult or None (no code)
    critiques: list  # Critique or None (not judged)
    rewards: np.ndarray  # [P*G] float32
    reward_failed: np.ndarray  # [P*G] bool: the reward could not score the sample (see rl.rewards)
    timing: dict  # seconds: sample, render_wait, judge, reward


def _prompt_rows(prompt: dict, lo: int, hi: int) -> dict:
    """Prompts lo..hi of a processed batch whose prompts hold one image each."""
    grids = prompt["image_grid_thw"]
    if len(grids) != len(prompt["input_ids"]):
        raise ValueError("policy prompts must hold exactly one image each")
    starts = np.concatenate([[0], np.cumsum(grids.prod(axis=1))])
    return {"input_ids": prompt["input_ids"][lo:hi], "attention_mask": prompt["attention_mask"][lo:hi],
            "pixel_values": prompt["pixel_values"][starts[lo]:starts[hi]], "image_grid_thw": grids[lo:hi]}


def policy_messages(task) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": task.reference_image},
                                         {"type": "text", "text": task.prompt}]}]


class RolloutWorker:
    """Turns a batch of RLTasks into a scored Rollout."""

    def __init__(self, sampler, processor, pool, *, reward: str, group_size: int, max_new_tokens: int, params,
                 judge=None, micro_batches: int = 1, reward_deps: dict | None = None, overlap: bool = True):
        if reward == "visual_erm" and judge is None:
            raise ValueError("the visual_erm reward needs a judge (visual_erm.judge.VisualERM)")
        self.sampler, self.processor, self.pool, self.judge = sampler, processor, pool, judge
        self.reward, self.group_size, self.max_new_tokens, self.params = reward, group_size, max_new_tokens, params
        self.micro_batches, self.reward_deps, self.overlap = micro_batches, dict(reward_deps or {}), overlap
        self._feeder = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-feeder")

    def close(self) -> None:
        self._feeder.shutdown(wait=True)

    def _render_size(self, task):
        return task.reference_image.size if task.kind == "svg" else None

    def _submit(self, tasks: Sequence, codes: Sequence[ExtractedCode], first_row: int) -> list:
        """Futures (of the pool's futures) for each code, None without code; never blocks."""
        futures = []
        for offset, code in enumerate(codes):
            task = tasks[(first_row + offset) // self.group_size]
            futures.append(None if code.code is None else
                           self._feeder.submit(self.pool.submit, task.kind, code.code, size=self._render_size(task)))
        return futures

    def __call__(self, tasks: Sequence, rng: jax.Array) -> Rollout:
        timing = {"sample": 0.0, "render_wait": 0.0, "judge": 0.0, "reward": 0.0}
        prompt = self.processor([policy_messages(t) for t in tasks], padding_side="left")
        sample_key, judge_key = jax.random.split(rng)
        tokens, lengths, stopped, logprobs, texts, codes, futures = [], [], [], [], [], [], []
        bounds = np.linspace(0, len(tasks), self.micro_batches + 1).astype(int)
        for index, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            if lo == hi:
                continue
            part = _prompt_rows(prompt, lo, hi)
            start = time.perf_counter()
            out = self.sampler.generate(part["input_ids"], part["attention_mask"], part["pixel_values"],
                                        part["image_grid_thw"], max_new_tokens=self.max_new_tokens,
                                        num_samples=self.group_size, rng=jax.random.fold_in(sample_key, index),
                                        params=self.params)
            timing["sample"] += time.perf_counter() - start
            part_texts = [self.processor.decode(t[:n]) for t, n in zip(out.tokens, out.lengths)]
            part_codes = [extract_code(tasks[lo + i // self.group_size].kind, text)
                          for i, text in enumerate(part_texts)]
            tokens.append(out.tokens)
            lengths.append(out.lengths)
            stopped.append(out.stopped)
            logprobs.append(out.sample_logprobs)
            texts += part_texts
            codes += part_codes
            if self.overlap:  # render while the device samples the next micro-batch
                futures += self._submit(tasks, part_codes, lo * self.group_size)
        start = time.perf_counter()
        if not self.overlap:
            futures = self._submit(tasks, codes, 0)
        renders = [None if f is None else f.result().result() for f in futures]
        timing["render_wait"] = time.perf_counter() - start
        critiques = self._judge(tasks, renders, judge_key, timing)
        start = time.perf_counter()
        inputs = [RewardInput(tasks[i // self.group_size], texts[i], renders[i], critiques[i])
                  for i in range(len(texts))]
        rewards, reward_failed = score_rewards(self.reward, inputs, **self.reward_deps)
        timing["reward"] = time.perf_counter() - start
        width = self.max_new_tokens

        def widen(parts, fill):
            return np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1])), constant_values=fill) for t in parts])

        return Rollout(list(tasks), self.group_size, prompt, widen(tokens, self.sampler.pad_id),
                       np.concatenate(lengths), np.concatenate(stopped), widen(logprobs, 0.0).astype(np.float32),
                       texts, codes, renders, critiques, rewards, reward_failed, timing)

    def _judge(self, tasks, renders, key, timing) -> list:
        critiques: list[Critique | None] = [None] * len(renders)
        if self.reward != "visual_erm":
            return critiques
        blank = self.reward_deps.get("blank", "white")
        judged = [i for i, r in enumerate(renders)
                  if r is not None and r.image is not None and not is_blank(r.image, blank)]
        if judged or jax.process_count() > 1:  # the judge's sampler calls are collectives: every host calls
            start = time.perf_counter()
            references = [tasks[i // self.group_size].reference_image for i in judged]
            outputs = self.judge.critique([tasks[i // self.group_size].kind for i in judged], references,
                                          [renders[i].image for i in judged], rng=key)
            for i, critique in zip(judged, outputs):
                critiques[i] = critique
            timing["judge"] = time.perf_counter() - start
        return critiques


def rollout_metrics(rollout: Rollout) -> dict[str, Any]:
    """Reward mean/std per kind, render failures by type, parse rate, response length: over every
    host's samples (timings are this host's)."""
    G = rollout.group_size
    outcomes = ("image", "no_code") + ERROR_KINDS
    per_sample = np.stack([
        [KINDS.index(rollout.tasks[i // G].kind) for i in range(len(rollout.texts))],
        [outcomes.index("no_code" if r is None else "image" if r.error is None else r.error.kind)
         for r in rollout.renders],
        [-1 if c is None else int(c.valid) for c in rollout.critiques],
        np.asarray(rollout.rewards, np.float64), np.asarray(rollout.lengths, np.float64),
        np.asarray(rollout.reward_failed, np.float64)], axis=1)
    kind, outcome, critique, rewards, lengths, failed = gather_rows(per_sample).T
    metrics: dict[str, Any] = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
                               "response_length": float(lengths.mean()),
                               "reward_failure_rate": float(failed.mean())}
    for k in sorted(set(kind.astype(int))):
        values = rewards[kind == k]
        metrics[f"reward_mean/{KINDS[k]}"] = float(values.mean())
        metrics[f"reward_std/{KINDS[k]}"] = float(values.std())
    metrics["render_failure/no_code"] = float(np.mean(outcome == outcomes.index("no_code")))
    for k in sorted(set(outcome.astype(int)) - {0, 1}):
        metrics[f"render_failure/{outcomes[k]}"] = float(np.mean(outcome == k))
    if (critique >= 0).any():
        metrics["critique_parse_rate"] = float(critique[critique >= 0].mean())
    metrics.update({f"time/{k}": v for k, v in rollout.timing.items()})
    return metrics


def select_groups(rollouts: Sequence[Rollout], chosen: Sequence[tuple[int, int]], processor) -> Rollout:
    """One Rollout of the groups `chosen` ((rollout index, group index) pairs, in that order) from
    several rollouts of the same group size; prompts are re-processed for the chosen tasks (the
    processor is deterministic; only the prompts' left padding may change, which changes nothing)."""
    G = rollouts[0].group_size
    tasks = [rollouts[r].tasks[g] for r, g in chosen]
    samples = [(rollouts[r], g * G + i) for r, g in chosen for i in range(G)]
    def pick(field):
        return [getattr(r, field)[i] for r, i in samples]

    timing = {k: sum(r.timing[k] for r in rollouts) for k in rollouts[0].timing}
    return Rollout(tasks, G, processor([policy_messages(t) for t in tasks], padding_side="left"),
                   np.stack(pick("tokens")), np.asarray(pick("lengths")), np.asarray(pick("stopped")),
                   np.stack(pick("sample_logprobs")), pick("texts"), pick("codes"), pick("renders"),
                   pick("critiques"), np.asarray(pick("rewards"), np.float32), np.asarray(pick("reward_failed")),
                   timing)
