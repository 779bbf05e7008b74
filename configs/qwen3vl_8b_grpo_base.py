"""Shared settings of the Qwen3-VL-8B GRPO runs (TPU pod, v5p-64 class); one file per task kind sets the rest.

Policy, frozen reference and judge share one mesh; each host renders its own
rollouts in its own RenderPool. Hyperparameters follow the published recipe where
known (group size 8, clip-higher, lr 1e-6, temperature 1.0); dataset paths are
local copies in their published layouts (rl/datasets.py).
"""
import ml_collections

from configs import tiny_grpo_svg


def get_config(kind: str, tasks: dict, max_new_tokens: int) -> ml_collections.ConfigDict:
    c = tiny_grpo_svg.get_config()
    c.mesh_shape = (1, 64, 1)
    c.render_workers = 96  # per host: rendering must keep up with sampling
    c.total_steps = 500
    c.checkpoint_every = 25
    c.keep_checkpoints = 3
    c.reward = "visual_erm"
    c.tasks = ml_collections.ConfigDict(tasks)

    c.model.checkpoint = ""  # REQUIRED: local Qwen3-VL-8B-Instruct directory
    c.model.dtype = "bfloat16"
    c.judge.checkpoint = ""  # REQUIRED: a trained Visual-ERM (launch.export_hf of configs/qwen3vl_8b_erm.py)
    c.judge.greedy = False  # published judge sampling settings (visual_erm.judge.PUBLISHED_SETTINGS)
    c.judge.max_new_tokens = 4096

    c.max_side = 1024
    c.seq_buckets = (1024, 2048, 4096)
    c.patch_buckets = (65536, 131072, 262144, 524288)
    c.prompts_per_step = 256  # global, as published (train_batch_size 256)
    c.group_size = 8
    c.micro_batches = 8
    c.max_new_tokens = max_new_tokens
    c.loss_chunk_size = 512

    c.sampling.temperature = 1.0
    # Published script: low-var (k3) KL 0.01, symmetric clip 0.2, 2 mini-batches of 128 prompts.
    c.grpo.kl_coef = 0.01
    c.grpo.clip_high = 0.2
    c.grpo.epochs = 1
    c.grpo.mini_batches = 2
    c.warmstart.steps = 0  # start from the instruct model

    c.optimizer.learning_rate = 1e-6
    c.optimizer.warmup_steps = 10
    c.optimizer.total_steps = c.total_steps * c.grpo.epochs * c.grpo.mini_batches
    c.optimizer.end_learning_rate_ratio = 1.0
    c.optimizer.weight_decay = 0.01
    c.kind = kind
    return c
