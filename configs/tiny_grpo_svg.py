"""GRPO on a toy image-to-SVG task, on a laptop CPU in minutes (README's main job).

    python -m launch.main --config=configs/tiny_grpo_svg.py --workdir=/tmp/tiny_grpo

A tiny policy (built locally, warm-started by a few supervised steps) learns to
redraw one shape; rewards come from the tiny Visual-ERM judge that ships with the
package (trained on this task by configs/tiny_erm_shapes.py; see its MODEL_CARD.md)
through the render pool. Before and after RL the policy redraws held-out shapes
(seeds never trained on), scored by SSIM and pixel MSE (`heldout/*` in the final
metrics; workdir/heldout.png shows them). `--config.reward=mse` swaps in a
pixel-agreement reward (what the learning test uses); `--config.judge.checkpoint=DIR`
another judge (empty: an untrained one).
Shared keys and their meaning: configs/common.py.
"""
import os

import ml_collections

import visual_erm
from configs import common

TINY_SHAPES_JUDGE = os.path.join(os.path.dirname(visual_erm.__file__), "checkpoints", "tiny_shapes_judge")
HELD_OUT_SHAPES = 1_000_000_000  # = visual_erm.shapes_data.HELD_OUT_SEED; training tasks are seeds < 5000


def get_config() -> ml_collections.ConfigDict:
    c = common.grpo()
    c.render_workers = 2
    c.total_steps = 12
    c.checkpoint_every = 4
    c.keep_checkpoints = 2

    c.tasks = ml_collections.ConfigDict({"name": "shapes", "params": {"start": 0, "stop": 5000, "canvas": 32}})
    c.model.vocab_size = 512
    c.model.max_pixels = 32 * 32
    c.judge.checkpoint = TINY_SHAPES_JUDGE  # empty: an untrained tiny judge (see rl/models.py)
    c.judge.max_new_tokens = 112  # its longest critique of the task (3 errors) is ~95 tokens
    c.judge.batch_size = 64

    c.heldout = ml_collections.ConfigDict()
    c.heldout.n = 16  # 0: no held-out evaluation
    c.heldout.every = 0  # also evaluate (scores and a sample table) every this many steps; 0: at the end only
    c.heldout.tasks = ml_collections.ConfigDict(
        {"name": "shapes", "params": {"start": HELD_OUT_SHAPES, "stop": HELD_OUT_SHAPES + 64, "canvas": 32}})

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
