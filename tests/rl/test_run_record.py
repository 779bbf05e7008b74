"""What a GRPO run records besides step metrics: the held-out start kept across resumes, the sample table."""
import types

import jax.numpy as jnp
from PIL import Image

from policy.learning_rate import last_learning_rate, update_count
from policy.metric_writers import MetricWriter
from rl import run_record


def test_heldout_start_is_read_back_from_step_one(tmp_path):
    writer = MetricWriter(str(tmp_path), writers="jsonl")
    writer.write(1, {"reward_mean": 0.5, "heldout/ssim/start": 0.25, "heldout/mse/start": 0.1})
    writer.write(2, {"reward_mean": 0.6, "heldout/ssim": 0.3})
    writer.close()
    assert run_record.saved_start(writer.path) == {"heldout/ssim": 0.25, "heldout/mse": 0.1}
    assert run_record.saved_start(str(tmp_path / "none.jsonl")) == {}


class FakeJudge:
    def __init__(self):
        self.calls = []

    def critique(self, kinds, references, candidates):
        self.calls.append(len(kinds))
        return [types.SimpleNamespace(valid=True, to_json=lambda: '{"errors": []}') for _ in kinds]


def test_sample_table_shows_targets_renders_scores_and_critiques():
    tasks = [types.SimpleNamespace(id=f"shape-{i}", kind="svg", reference_image=Image.new("RGB", (8, 8), "blue"))
             for i in range(6)]
    heldout = types.SimpleNamespace(tasks=tasks)
    heldout.renders = {"step 3": [Image.new("RGB", (8, 8), "red"), None] + [Image.new("RGB", (8, 8))] * 4}
    heldout.samples = {"step 3": ([f"<svg>{i}|</svg>" for i in range(6)],
                                  [{"id": t.id, "ssim": 0.5 + i / 10, "error": None} for i, t in enumerate(tasks)])}
    judge = FakeJudge()
    images, table = run_record.sample_table(heldout, "step 3", judge)
    assert sorted(images) == [f"heldout_samples/{i}" for i in range(run_record.SAMPLES)]
    assert images["heldout_samples/0"].size == (2 * 24 + 4, 24)
    assert images["heldout_samples/0"].getpixel((30, 5)) == (255, 0, 0)  # the rendering beside the target
    assert judge.calls == [run_record.SAMPLES - 1]  # the sample that did not render is not judged
    lines = table.splitlines()
    assert len(lines) == 2 + run_record.SAMPLES
    assert '"ssim": 0.5' in lines[2] and '{"errors": []}' in lines[2] and "<svg>0\\|</svg>" in lines[2]
    assert "| - |" in lines[3]  # no critique for the missing render


def test_learning_rate_follows_the_schedule_with_the_update_count():
    cfg = {"learning_rate": 1.0, "warmup_steps": 4, "total_steps": 10, "end_learning_rate_ratio": 0.1,
           "weight_decay": 0.0, "clip_norm": 1.0}
    from policy.optimizer import make_optimizer

    tx = make_optimizer(cfg)
    params = {"w": jnp.zeros((2, 2))}
    state = tx.init(params)
    assert update_count(state) == 0 and last_learning_rate(cfg, state) == 0.0
    for _ in range(2):
        _, state = tx.update({"w": jnp.ones((2, 2))}, state, params)
    assert update_count(state) == 2 and abs(last_learning_rate(cfg, state) - 0.25) < 1e-6
