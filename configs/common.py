"""Settings every run shares, one function per trainer (big_vision style): each experiment file starts
from `sft()` or `grpo()` and overrides what it changes, so a key means the same thing in every config.

The defaults are the laptop-scale ones; the 8B files override model, mesh, shapes and schedule.
"""
import ml_collections

ConfigDict = ml_collections.ConfigDict


def model(**overrides) -> ConfigDict:
    """Where the model comes from and how it runs.

    checkpoint: a Hugging Face Qwen3-VL directory, local or gs:// ("" builds a tiny one in the workdir);
    preset: the architecture `launch.aot` compiles when no checkpoint is given (e.g. "qwen3vl_8b");
    dtype: compute dtype of activations and matmuls; param_dtype: storage dtype of the trainable
    (master) weights and, through them, of the AdamW moments: keep it float32 (bf16 masters round
    lr-1e-6 updates away); scan_layers: one compiled decoder layer run by lax.scan;
    remat: "none" | "full" | "dots" | "dots_no_batch" (policy.text.REMAT) per decoder/vision layer.
    """
    c = ConfigDict({"checkpoint": "", "preset": "", "dtype": "float32", "param_dtype": "float32",
                    "scan_layers": False, "remat": "none", "vocab_size": 1024, "max_pixels": 48 * 48})
    c.update(overrides)
    return c


def optimizer(**overrides) -> ConfigDict:
    """policy.optimizer.make_optimizer's settings (AdamW, warmup + cosine, clipping)."""
    c = ConfigDict({"learning_rate": 1e-4, "warmup_steps": 0, "total_steps": 1000, "end_learning_rate_ratio": 0.1,
                    "weight_decay": 0.0, "clip_norm": 1.0})
    c.update(overrides)
    return c


def _run(trainer: str) -> ConfigDict:
    c = ConfigDict()
    c.trainer = trainer
    c.seed = 0
    c.mesh_shape = ()  # empty: all devices on fsdp; e.g. (1, 1, 1) for one device, (1, 16, 4) adds tensor
    # persistent compilation cache (policy/compile_cache.py): a directory or gs:// path; empty: off
    c.compilation_cache_dir = ""
    c.total_steps = 100
    c.checkpoint_every = 50
    c.keep_checkpoints = 3
    c.loss_chunk_size = None  # LM head over sequence chunks of this many tokens (None: one chunk)
    # Render even where the host lacks part of the sandbox (no user namespaces, as in Colab's container):
    # RenderPool(allow_weak_sandbox=True) then warns once, naming what is missing. Keep False on pods.
    c.allow_weak_sandbox = False
    c.writers = "tensorboard,jsonl"  # comma-separated: tensorboard, jsonl, wandb (policy/metric_writers.py)
    c.model = model()
    c.optimizer = optimizer()
    return c


def sft() -> ConfigDict:
    """Visual-ERM fine-tuning (visual_erm/train.py)."""
    c = _run("visual_erm_sft")
    c.optimizer.total_steps = c.get_ref("total_steps")  # one optimizer update per step
    c.batch_size = 8  # global: reward pairs per step, split evenly over hosts
    c.data = ConfigDict({
        "train_dir": "", "eval_dir": "",  # empty: generate into workdir/data
        "kinds": ("chart", "table", "svg"), "generate_train": 600, "generate_eval": 48, "render_workers": 2,
        "shard_size": 200, "max_side": None,
        # Few buckets: every (sequence, patch) shape is one XLA compilation.
        "seq_buckets": (512, 768, 1024), "patch_buckets": (2560,)})
    c.eval = ConfigDict({"every": 50, "batches": 6, "critiques": 24, "max_new_tokens": 256, "greedy": True})
    return c


def grpo() -> ConfigDict:
    """GRPO with Visual-ERM (or baseline) rewards (rl/trainer.py)."""
    c = _run("grpo")
    c.render_workers = 2  # per host
    c.reward = "visual_erm"  # or text_similarity | ssim | mse | embedding_cosine | teds | teds_structure
    c.tasks = ConfigDict({"name": "shapes", "params": {"start": 0, "stop": 5000, "canvas": 32}})
    # reasks: an unparsable critique is asked for once more (as the official reward code does)
    c.judge = ConfigDict({"checkpoint": "", "greedy": True, "max_new_tokens": 48, "reasks": 1})
    c.max_side = None
    c.seq_buckets = (64, 128, 256)
    c.patch_buckets = (512, 1024, 4096)
    c.prompts_per_step = 8  # global
    c.group_size = 8
    c.micro_batches = 2  # sampler calls per step: render micro-batch k while sampling k+1
    c.overlap = True
    c.max_new_tokens = 48
    c.sampling = ConfigDict({"temperature": 1.0, "top_p": 1.0, "top_k": 0})
    # Every field of rl.grpo.GRPOLoss and rl.grpo.GRPOLoop may be set here (--config.grpo.mini_batches=2, ...).
    c.grpo = ConfigDict({"clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.0, "normalize_std": True,
                         "aggregation": "token_mean", "epochs": 1, "mini_batches": 1, "grad_accumulation": 1,
                         "dynamic_sampling": False, "overlong": "none", "train_distribution": "sampling"})
    # Passed to the reward function: table_form (published | shaped), blank (white | uniform).
    c.reward_params = ConfigDict({"table_form": "published", "blank": "white"})
    c.warmstart = ConfigDict({"steps": 0, "batch_size": 16})
    # The warm start's schedule spans its own steps (a reference: --config.warmstart.steps=N moves it too).
    c.warmstart.optimizer = optimizer(learning_rate=5e-3, warmup_steps=10, end_learning_rate_ratio=0.2)
    c.warmstart.optimizer.total_steps = c.warmstart.get_ref("steps")
    return c
