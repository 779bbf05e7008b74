"""RolloutWorker with fake sampler, processor and pool: the sampling thread never waits on the pool,
behaviour log-probs and stop flags travel with the rollout, and dynamic sampling's group selection."""
import concurrent.futures
import threading

import jax
import numpy as np
from PIL import Image

from policy.sampler import SampleOutput
from render import RenderResult
from rl.rollout import RolloutWorker, select_groups
from rl.task_sources import RLTask

SVG = "```svg\n<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'><rect width='4' height='4'/></svg>\n```"


class FakeProcessor:
    def __call__(self, messages, padding_side="left"):
        n = len(messages)
        return {"input_ids": np.ones((n, 3), np.int64), "attention_mask": np.ones((n, 3), np.int32),
                "pixel_values": np.zeros((4 * n, 2), np.float32), "image_grid_thw": np.tile([[1, 2, 2]], (n, 1))}

    def decode(self, tokens):
        return SVG


class FakeSampler:
    pad_id = 0

    def __init__(self):
        self.calls = 0
        self.second_call = threading.Event()

    def generate(self, input_ids, attention_mask, pixel_values, grids, *, max_new_tokens, num_samples, rng, params):
        self.calls += 1
        if self.calls == 2:
            self.second_call.set()
        rows = len(input_ids) * num_samples
        base = 10 * self.calls
        return SampleOutput(tokens=np.full((rows, 2), 5, np.int32), logprobs=np.zeros((rows, 2), np.float32),
                            sample_logprobs=-(base + np.arange(2 * rows, dtype=np.float32).reshape(rows, 2)),
                            lengths=np.full(rows, 2, np.int32), stopped=np.arange(rows) % 2 == 0,
                            prompt_index=np.arange(rows) // num_samples)


class BlockingPool:
    """A pool whose queue is full until the sampler has started on the second micro-batch."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.unblocked_by_sampling = []

    def submit(self, kind, code, *, size=None):
        self.unblocked_by_sampling.append(self.sampler.second_call.wait(timeout=10))
        done = concurrent.futures.Future()
        done.set_result(RenderResult(image=Image.new("RGB", (8, 8), "black")))
        return done


def tasks(n):
    image = Image.new("RGB", (8, 8), "white")
    return [RLTask(id=str(i), kind="svg", reference_image=image, prompt="draw", reference_code="<svg/>", source="test")
            for i in range(n)]


def test_sampling_continues_while_the_render_pool_blocks():
    sampler = FakeSampler()
    pool = BlockingPool(sampler)
    worker = RolloutWorker(sampler, FakeProcessor(), pool, reward="mse", group_size=2, max_new_tokens=3,
                           params=None, micro_batches=2)
    try:
        rollout = worker(tasks(2), jax.random.key(0))
    finally:
        worker.close()
    assert pool.unblocked_by_sampling and all(pool.unblocked_by_sampling)  # submit never held up sampling
    assert rollout.timing["render_wait"] >= 0
    # behaviour log-probs and stop flags of both micro-batches, padded to max_new_tokens
    np.testing.assert_array_equal(rollout.sample_logprobs[:, :2],
                                  [[-10, -11], [-12, -13], [-20, -21], [-22, -23]])
    np.testing.assert_array_equal(rollout.sample_logprobs[:, 2], 0.0)
    np.testing.assert_array_equal(rollout.stopped, [True, False, True, False])


def test_select_groups_takes_whole_groups_in_order():
    sampler = FakeSampler()
    done = concurrent.futures.Future()
    done.set_result(RenderResult(image=Image.new("RGB", (8, 8), "black")))
    pool = type("Pool", (), {"submit": lambda self, kind, code, size=None: done})()
    worker = RolloutWorker(sampler, FakeProcessor(), pool, reward="mse", group_size=2, max_new_tokens=2,
                           params=None)
    try:
        first, second = worker(tasks(2), jax.random.key(0)), worker(tasks(2), jax.random.key(1))
    finally:
        worker.close()
    merged = select_groups([first, second], [(1, 1), (0, 0)], FakeProcessor())
    assert [t.id for t in merged.tasks] == ["1", "0"]
    np.testing.assert_array_equal(merged.sample_logprobs, np.concatenate([second.sample_logprobs[2:],
                                                                          first.sample_logprobs[:2]]))
    assert merged.prompt["input_ids"].shape == (2, 3) and len(merged.texts) == 4
