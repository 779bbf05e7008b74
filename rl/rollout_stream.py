"""The rollout role of a GRPO step: this step's tasks from the global task stream, rolled out and scored.

Every host reads the same global task stream and keeps its block of every micro-batch (`draw`): each
sampler call, and so the run, is the same on one host or many, and the iterator state is the same on
every host. The price: each host materialises every task. With dynamic sampling, groups whose rewards
are all equal are dropped and more prompts rolled out until enough groups carry signal.
"""
from __future__ import annotations

import jax
import numpy as np

from rl.grpo import GRPOLoop
from rl.rollout import Rollout, select_groups


class RolloutStream:
    """Scored rollouts of the run's task stream, one call per step (`worker`: `rl.rollout.RolloutWorker`)."""

    def __init__(self, worker, task_iter, processor, loop: GRPOLoop, *, seed: int, prompts_per_step: int,
                 micro_batches: int, group_size: int):
        self.worker, self.task_iter, self.processor, self.loop = worker, task_iter, processor, loop
        self.seed, self.prompts_per_step = seed, prompts_per_step
        self.micro_batches, self.group_size = micro_batches, group_size

    def draw(self, global_size: int, micro_batches: int = 1) -> list:
        """This host's share of the next global batch of tasks: its block of every micro-batch, so each
        micro-batch (one sampler call, all hosts together) holds the tasks it holds on one host."""
        tasks = [next(self.task_iter) for _ in range(global_size)]
        hosts, me = jax.process_count(), jax.process_index()
        return [tasks[i] for part in np.array_split(np.arange(global_size), micro_batches)
                for i in np.array_split(part, hosts)[me]]

    def __call__(self, step: int) -> tuple[Rollout, dict]:
        """This step's scored rollout and its dynamic-sampling metrics; with dynamic sampling, at most
        `max_sampling_rounds` rollouts until `prompts_per_step` groups carry signal; short of that,
        dropped groups fill the batch."""
        key = jax.random.fold_in(jax.random.key(self.seed), step)
        rollout = self.worker(self.draw(self.prompts_per_step, self.micro_batches), key)
        if not self.loop.dynamic_sampling:
            return rollout, {}
        parts, kept, dropped = [rollout], [], []
        for round_index in range(self.loop.max_sampling_rounds):
            if round_index:
                parts.append(self.worker(self.draw(self.prompts_per_step, self.micro_batches),
                                         jax.random.fold_in(key, round_index)))
            rewards = parts[-1].rewards.reshape(-1, self.group_size)
            for group, signal in enumerate(rewards.std(axis=1) > self.loop.eps):
                (kept if signal else dropped).append((round_index, group))
            if len(kept) >= self.prompts_per_step:
                break
        chosen = (kept + dropped)[:self.prompts_per_step]
        merged = select_groups(parts, chosen, self.processor)
        return merged, {"dynamic_sampling/rounds": float(len(parts)),
                        "dynamic_sampling/signal_groups": float(min(len(kept), self.prompts_per_step))}

    def close(self) -> None:
        self.worker.close()
