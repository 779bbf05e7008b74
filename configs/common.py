"""The config schema: every key a run's code reads, declared once with its default and meaning.

One function per trainer (big_vision style): `sft()` (visual_erm/train.py) and `grpo()` (rl/trainer.py);
`trainer` selects which. Each experiment file starts from one of them and assigns only the values it
changes (tests/configs/test_common.py checks both). The returned ConfigDict is locked: assigning a key
that is not declared here (`c.heldout.nn = 3`, `--config.grpo.clip_hgh=0.3`) fails naming the key, and
`undeclared` finds keys brought in by replacing a whole block (`launch.config_check` refuses them).
An optional value is declared as None (or "", or 0) and the code reads it directly and handles that value.

The defaults are the laptop-scale ones; the 8B files override model, mesh, shapes and schedule.

Keys of both trainers (`_run`):

| key | meaning |
| --- | --- |
| trainer | "visual_erm_sft" or "grpo": which loop `launch.main` runs |
| seed | parameter init, data order, sampling |
| mesh_shape | (data, fsdp, tensor) device mesh; () puts every device on fsdp |
| compilation_cache_dir | JAX persistent compilation cache, a directory or gs:// path; "": off |
| total_steps | training steps (SFT: optimizer updates; GRPO: rollout + update rounds) |
| checkpoint_every, keep_checkpoints | checkpoint period in steps; checkpoints kept (GRPO also keeps step 0) |
| loss_chunk_size | LM head and loss over sequence chunks of this many tokens; None: one chunk |
| allow_weak_sandbox | GRPO's render pool runs where the host lacks part of the sandbox (warns once); False on pods |
| writers | comma-separated metric writers: tensorboard, jsonl, wandb (policy/metric_writers.py) |
| render_workers | render-pool processes per host (SFT: data generation; GRPO: rollouts, held-out tasks) |
| max_side | images are resized to at most this many pixels on the longer side; None: the processor's max_pixels |
| seq_buckets | padded sequence lengths (prompts for GRPO, whole examples for SFT); each is one compilation |
| patch_buckets | padded image-patch counts of a batch (per host); each is one compilation; multiples of the |
|  | vision bin, the largest image's patch count (policy.image_processor.patch_layout) |
| model.* | the trained model, see `model()` |
| optimizer.* | AdamW with warmup + cosine, see `optimizer()` |
"""
import ml_collections

ConfigDict = ml_collections.ConfigDict

HELD_OUT_SHAPES = 1_000_000_000  # = visual_erm.shapes_data.HELD_OUT_SEED; training shapes are seeds < 5000

# Blocks whose keys belong to another schema, checked where they are consumed: a task source's
# parameters (its constructor, rl/task_mix.py), a mixture's sources ({name, params, weight} each), and
# overrides of the tiny model's decoder / vision tower (policy/tiny_checkpoint.tiny_config's dataclasses).
FREE_FORM = ("tasks.params", "tasks.sources", "heldout.tasks.params", "model.text", "model.vision")


def model(**overrides) -> ConfigDict:
    """Where the model comes from and how it runs.

    checkpoint: a Hugging Face Qwen3-VL directory, local or gs:// ("" builds a tiny one in the workdir);
    preset: the architecture `launch.aot` compiles when no checkpoint is given (e.g. "qwen3vl_8b"; "": the
    tiny build); dtype: compute dtype of activations and matmuls; param_dtype: storage dtype of the
    trainable (master) weights and, through them, of the AdamW moments: keep it float32 (bf16 masters round
    lr-1e-6 updates away); scan_layers: one compiled decoder layer run by lax.scan;
    remat: "none" | "full" | "dots" | "dots_no_batch" (policy.text.REMAT) per decoder/vision layer;
    vocab_size, max_pixels: tokenizer size and image budget of a tiny model built here;
    text, vision: None, or fields of Qwen3VLConfig.tiny()'s decoder / vision tower a tiny build changes
    (GRPO's tiny policy and judge take `vision` only).
    """
    c = ConfigDict({"checkpoint": "", "preset": "", "dtype": "float32", "param_dtype": "float32",
                    "scan_layers": False, "remat": "none", "vocab_size": 1024, "max_pixels": 48 * 48,
                    "text": None, "vision": None})
    c.update(overrides)
    return c


def optimizer(**overrides) -> ConfigDict:
    """policy.optimizer.make_optimizer's settings (AdamW, warmup + cosine to end_learning_rate_ratio x peak,
    global-norm clipping); steps count optimizer updates."""
    c = ConfigDict({"learning_rate": 1e-4, "warmup_steps": 0, "total_steps": 1000, "end_learning_rate_ratio": 0.1,
                    "weight_decay": 0.0, "clip_norm": 1.0})
    c.update(overrides)
    return c


def _run(trainer: str) -> ConfigDict:
    c = ConfigDict()
    c.trainer = trainer
    c.seed = 0
    c.mesh_shape = ()
    c.compilation_cache_dir = ""
    c.total_steps = 100
    c.checkpoint_every = 50
    c.keep_checkpoints = 3
    c.loss_chunk_size = None
    # Colab's container has no user namespaces: RenderPool(allow_weak_sandbox=True) then warns once.
    c.allow_weak_sandbox = False
    c.writers = "tensorboard,jsonl"
    c.render_workers = 2
    c.max_side = None
    c.model = model()
    c.optimizer = optimizer()
    return c


def sft() -> ConfigDict:
    """Visual-ERM fine-tuning (visual_erm/train.py).

    | key | meaning |
    | --- | --- |
    | batch_size | global reward pairs per step, split evenly over hosts |
    | data.train_dir, data.eval_dir | reward data (make_data folder, gs://, tfds:); "": generate into workdir/data |
    | data.generator | "tasks": chart/table/SVG generators with error injection; "shapes": visual_erm/shapes_data.py |
    | data.kinds | task kinds the "tasks" generator draws |
    | data.generate_train, data.generate_eval | pairs generated for training / held-out evaluation |
    | data.shard_size | pairs per ArrayRecord shard the "tasks" generator writes |
    | eval.every, eval.batches | held-out loss every this many steps, over this many batches |
    | eval.critiques | held-out pairs the judge critiques for parse rate and bench F1; 0: none (multi-host runs) |
    | eval.max_new_tokens | critique length limit in evaluation |
    | eval.greedy | greedy critiques; False: the published sampling (its presence penalty breaks a tiny model's JSON) |
    """
    c = _run("visual_erm_sft")
    c.optimizer.total_steps = c.get_ref("total_steps")  # one optimizer update per step
    c.batch_size = 8
    # Few buckets: every (sequence, patch) shape is one XLA compilation.
    c.seq_buckets = (512, 768, 1024)
    c.patch_buckets = (2304,)  # 8 pairs x 2 images, each in its own vision bin of 144 patches (48x48 px, patch 4)
    c.data = ConfigDict({"train_dir": "", "eval_dir": "", "generator": "tasks", "kinds": ("chart", "table", "svg"),
                         "generate_train": 600, "generate_eval": 48, "shard_size": 200})
    c.eval = ConfigDict({"every": 50, "batches": 6, "critiques": 24, "max_new_tokens": 256, "greedy": True})
    c.lock()
    return c


def grpo() -> ConfigDict:
    """GRPO with Visual-ERM (or baseline) rewards (rl/trainer.py).

    | key | meaning |
    | --- | --- |
    | reward | visual_erm, oracle_critic, text_similarity, ssim, mse, embedding_cosine, teds, ... (rl/rewards.py) |
    | reward_params.* | passed to the reward: table_form (published, shaped), blank (white, uniform) |
    | tasks.name, tasks.params | one task source (rl/task_mix.py SOURCE_NAMES) and its constructor's parameters |
    | tasks.sources | None, or a list of {name, params, weight} mixed by weight; when set, name/params are not read |
    | judge.checkpoint | the Visual-ERM judge's HF directory; "": an untrained tiny judge built in the workdir |
    | judge.preset | the judge architecture `launch.aot` compiles without a checkpoint; "": model.preset |
    | judge.greedy | greedy critiques; False: the published judge sampling |
    | judge.max_new_tokens, judge.batch_size | critique length limit; pairs per host per judge call |
    | judge.reasks | an unparsable critique is asked for this many more times (the official reward code: once) |
    | prompts_per_step, group_size | global prompts per step; samples per prompt (a group) |
    | micro_batches | sampler calls per step: render micro-batch k while sampling k+1 (when overlap) |
    | overlap | render and score on the host while the device samples |
    | max_new_tokens | the policy's answer length limit |
    | sampling.temperature, .top_p, .top_k | the policy's sampling (top_k 0: off) |
    | grpo.* | every field of rl.grpo.GRPOLoss and rl.grpo.GRPOLoop (loss; advantages, update schedule), same defaults |
    | warmstart.steps, .batch_size | supervised (image -> reference code) steps before RL and their tasks per step |
    | warmstart.optimizer.* | the warm start's own optimizer; its total_steps follows warmstart.steps |
    | heldout.n | held-out tasks greedily redrawn before and after RL (rl/heldout.py); 0: no held-out evaluation |
    | heldout.tasks | the held-out task source ({name, params}) |
    | heldout.every | also evaluate every this many steps; 0: at the end only |
    | heldout.min_image_dependence | refuse RL when held-out IoU on own targets beats shuffled by less; 0: no check |
    """
    c = _run("grpo")
    c.reward = "visual_erm"
    c.reward_params = ConfigDict({"table_form": "published", "blank": "white"})
    c.tasks = ConfigDict({"name": "shapes", "params": {"start": 0, "stop": 5000, "canvas": 32}, "sources": None})
    c.judge = ConfigDict({"checkpoint": "", "preset": "", "greedy": True, "max_new_tokens": 48, "batch_size": 8,
                          "reasks": 1})
    c.seq_buckets = (64, 128, 256)
    # Vision bins of 144 patches (48x48 px, patch 4) or 64 (32x32 px): 64 images of 64 patches take 32 or 64 bins.
    c.patch_buckets = (576, 1152, 4608)
    c.prompts_per_step = 8
    c.group_size = 8
    c.micro_batches = 2
    c.overlap = True
    c.max_new_tokens = 48
    c.sampling = ConfigDict({"temperature": 1.0, "top_p": 1.0, "top_k": 0})
    c.grpo = ConfigDict({
        "clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.0, "kl_on_all_tokens": False, "normalize_std": True,
        "aggregation": "token_mean", "eps": 1e-6, "log_ratio_clamp": 20.0, "train_distribution": "sampling",
        "tis_cap": 2.0, "epochs": 1, "mini_batches": 1, "shuffle": True, "grad_accumulation": 1,
        "dynamic_sampling": False, "max_sampling_rounds": 3, "overlong": "none", "overlong_buffer": 0,
        "overlong_penalty": 1.0})
    c.warmstart = ConfigDict({"steps": 0, "batch_size": 16})
    # The warm start's schedule spans its own steps (a reference: --config.warmstart.steps=N moves it too).
    c.warmstart.optimizer = optimizer(learning_rate=5e-3, warmup_steps=10, end_learning_rate_ratio=0.2)
    c.warmstart.optimizer.total_steps = c.warmstart.get_ref("steps")
    c.heldout = ConfigDict({
        "n": 0, "every": 0, "min_image_dependence": 0.0,
        "tasks": {"name": "shapes", "params": {"start": HELD_OUT_SHAPES, "stop": HELD_OUT_SHAPES + 64, "canvas": 32}}})
    c.lock()
    return c


SCHEMAS = {"visual_erm_sft": sft, "grpo": grpo}


def _leaves(config, prefix: str = ""):
    for key, value in config.items():
        path = prefix + key
        if isinstance(value, ConfigDict) and path not in FREE_FORM:
            yield from _leaves(value, path + ".")
        else:
            yield path


def undeclared(config) -> tuple[list[str], list[str]]:
    """(keys `config` sets that its trainer's schema does not declare, declared keys it lacks): what
    replacing a whole block by one with other keys leaves; ([], []) for an unknown trainer, which
    `launch.config_check` refuses by name."""
    if config.trainer not in SCHEMAS:
        return [], []
    declared, present = list(_leaves(SCHEMAS[config.trainer]())), list(_leaves(config))
    return [k for k in present if k not in declared], [k for k in declared if k not in present]
