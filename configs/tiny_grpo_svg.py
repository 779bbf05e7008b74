"""GRPO on a toy image-to-SVG task, on a laptop CPU in minutes (README's main job).

    python -m launch.main --config=configs/tiny_grpo_svg.py --workdir=/tmp/tiny_grpo

A tiny policy (built locally, warm-started by a few supervised steps) learns to
redraw one shape; rewards come from the tiny Visual-ERM judge through the render
pool. `--config.reward=mse` swaps in a pixel-agreement reward (what the
learning test uses); `--config.judge.checkpoint=DIR` a trained judge.
Shared keys and their meaning: configs/common.py.
"""
import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.grpo()
    c.render_workers = 2
    c.total_steps = 12
    c.checkpoint_every = 4
    c.keep_checkpoints = 2

    c.tasks = ml_collections.ConfigDict({"name": "shapes", "params": {"start": 0, "stop": 5000, "canvas": 32}})
    c.model.vocab_size = 512
    c.model.max_pixels = 32 * 32
    c.judge.max_new_tokens = 48
    c.judge.reasks = 1  # an unparsable critique is asked for once more (as the official reward code)

    c.seq_buckets = (64, 128, 256)
    c.patch_buckets = (512, 1024, 4096)  # 64 rows x 64 patches (32x32 px, patch 4) in updates
    c.prompts_per_step = 8
    c.group_size = 8
    c.micro_batches = 2
    c.max_new_tokens = 48
    c.grpo.epochs = 2  # two passes over each rollout

    c.warmstart.steps = 150
    c.warmstart.batch_size = 16

    c.optimizer.learning_rate = 5e-4
    c.optimizer.warmup_steps = 0
    c.optimizer.total_steps = 200
    c.optimizer.end_learning_rate_ratio = 1.0
    return c
