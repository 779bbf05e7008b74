"""GRPO on a toy image-to-SVG task, on a laptop CPU in minutes (README's main job).

    python -m launch.main --config=configs/tiny_grpo_svg.py --workdir=/tmp/tiny_grpo

A tiny policy (built locally, warm-started by a few supervised steps) learns to
redraw one shape; rewards come from the tiny Visual-ERM judge through the render
pool. `--config.reward=mse` swaps in a pixel-agreement reward (what the
learning test uses); `--config.judge.checkpoint=DIR` a trained judge.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.trainer = "grpo"
    c.seed = 0
    c.mesh_shape = ()  # empty: all devices on fsdp; e.g. (1, 1, 1) for one device
    c.render_workers = 2
    c.total_steps = 12
    c.checkpoint_every = 4
    c.keep_checkpoints = 2
    c.reward = "visual_erm"  # or text_similarity | ssim | mse | embedding_cosine | teds | teds_structure

    c.tasks = ml_collections.ConfigDict({"name": "shapes", "params": {"start": 0, "stop": 5000, "canvas": 32}})

    c.model = ml_collections.ConfigDict()
    c.model.checkpoint = ""  # empty: build a tiny policy in workdir/policy_model
    c.model.dtype = "float32"
    c.model.vocab_size = 512
    c.model.max_pixels = 32 * 32

    c.judge = ml_collections.ConfigDict()
    c.judge.checkpoint = ""  # empty: an untrained tiny judge (see rl/models.py)
    c.judge.greedy = True
    c.judge.max_new_tokens = 48
    c.judge.reasks = 1  # an unparsable critique is asked for once more (as the official reward code)

    c.max_side = None
    c.seq_buckets = (64, 128, 256)
    c.patch_buckets = (512, 1024, 4096)  # 64 rows x 64 patches (32x32 px, patch 4) in updates
    c.prompts_per_step = 8
    c.group_size = 8
    c.micro_batches = 2  # render micro-batch k while sampling k+1
    c.overlap = True
    c.max_new_tokens = 48
    c.loss_chunk_size = None

    c.sampling = ml_collections.ConfigDict({"temperature": 1.0, "top_p": 1.0, "top_k": 0})
    # Every field of rl.grpo.GRPOConfig may be set here (--config.grpo.mini_batches=2, ...).
    c.grpo = ml_collections.ConfigDict({"clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.0,
                                        "normalize_std": True, "aggregation": "token_mean", "epochs": 2,
                                        "mini_batches": 1, "grad_accumulation": 1, "dynamic_sampling": False,
                                        "overlong": "none", "train_distribution": "sampling"})
    # Passed to the reward function: table_form (published | shaped), blank (white | uniform).
    c.reward_params = ml_collections.ConfigDict({"table_form": "published", "blank": "white"})
    c.warmstart = ml_collections.ConfigDict({"steps": 150, "batch_size": 16})
    c.warmstart.optimizer = ml_collections.ConfigDict({"learning_rate": 5e-3, "warmup_steps": 10, "total_steps": 150,
                                                       "end_learning_rate_ratio": 0.2, "clip_norm": 1.0})

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.learning_rate = 5e-4
    c.optimizer.warmup_steps = 0
    c.optimizer.total_steps = 200
    c.optimizer.end_learning_rate_ratio = 1.0
    c.optimizer.clip_norm = 1.0
    return c
