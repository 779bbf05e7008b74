"""Check a run's config before anything is built, so a wrong value fails in seconds, not after a warm start.

`check(config)` raises `ConfigError` naming the key (as its `--config.` flag), the value, and what
is allowed: trainer, reward, whether a judge is needed, task sources and their folders, model / judge
checkpoints and reward data (local or gs://, read through `policy.paths`), mesh against the devices,
batch divisibility over hosts and micro-batches, GRPO options, metric writers, and that every key is one
configs/common.py declares. It reads no weights.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import jax

from configs.common import undeclared
from policy import paths
from policy.config_error import ConfigError
from policy.metric_writers import WRITERS

TRAINERS = ("visual_erm_sft", "grpo")
DTYPES = ("float32", "bfloat16", "float16")
REMAT = ("none", "full", "dots", "dots_no_batch")
DATA_GENERATORS = ("tasks", "shapes")


def _one_of(key: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise ConfigError(key, value, "unknown value", allowed)


def _hf_dir(key: str, location: str) -> None:
    """A Hugging Face directory (local or gs://) that holds a readable config.json."""
    config_json = paths.join(location, "config.json")
    try:
        paths.read_text(config_json)
    except Exception as exc:  # missing, unreadable, no permission, bucket unreachable
        raise ConfigError(key, location, f"not a readable Hugging Face directory ({config_json}: "
                          f"{type(exc).__name__})", "a folder or gs:// URL holding config.json") from None


def _reward_data(key: str, location: str) -> None:
    """A make_data folder or a TFDS location (local or gs://) that exists."""
    from visual_erm import tfds_source

    if tfds_source.is_tfds(location):
        try:
            where = tfds_source.parse(location)
        except tfds_source.LocationError as exc:
            raise ConfigError(key, location, str(exc), "tfds:NAME[/CONFIG][:VERSION]:SPLIT[@DATA_DIR]") from None
        dataset = paths.join(where.data_dir, where.name.split(":")[0]) if where.data_dir else None
        if dataset is not None and not _readable_dir(dataset):
            raise ConfigError(key, location, f"no TFDS dataset folder {dataset}", "a prepared TFDS dataset")
        return
    if not _readable_dir(location):
        raise ConfigError(key, location, "no such readable folder", "a make_data folder, gs:// URL or tfds: location")
    if not any(name.endswith(".array_record") for name in paths.listdir(location)):
        raise ConfigError(key, location, "holds no .array_record shards", "a make_data folder")


def _readable_dir(location: str) -> bool:
    try:
        return paths.isdir(location) and paths.listdir(location) is not None
    except Exception:  # permission denied, bucket unreachable
        return False


def _mesh(config) -> None:
    shape = tuple(config.mesh_shape)
    devices, hosts = jax.device_count(), jax.process_count()
    if not shape:
        return
    if len(shape) != 3 or any(int(n) < 1 for n in shape):
        raise ConfigError("mesh_shape", shape, "must be three positive sizes", "(data, fsdp, tensor)")
    size = math.prod(shape)
    if devices % size or (hosts > 1 and size != devices):
        allowed = f"sizes whose product is {devices}" if hosts > 1 else f"sizes whose product divides {devices}"
        raise ConfigError("mesh_shape", shape, f"{size} devices do not fit the {devices} devices here", allowed)


def _divides(key: str, value: int, parts: int, why: str) -> None:
    if value % parts:
        raise ConfigError(key, value, f"must split into {parts} equal parts ({why})", f"multiples of {parts}")


def _model(config) -> None:
    model = config.model
    for key in ("dtype", "param_dtype"):
        _one_of(f"model.{key}", model[key], DTYPES)
    _one_of("model.remat", model.remat, REMAT)
    from policy.config import Qwen3VLConfig

    tiny = Qwen3VLConfig.tiny()
    for block, fields in (("text", vars(tiny.text)), ("vision", vars(tiny.vision))):
        for key in model[block] or ():  # None: the tiny build's own
            if key not in fields:
                raise ConfigError(f"model.{block}.{key}", model[block][key],
                                  f"not a field of Qwen3VLConfig.tiny()'s {block} config", tuple(fields))
    if model.checkpoint:
        _hf_dir("model.checkpoint", model.checkpoint)


def _writers(config) -> None:
    writers = config.writers
    for name in (w.strip() for w in writers.split(",") if w.strip()):
        _one_of("writers", name, WRITERS)
    if "wandb" in writers:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ConfigError("writers", writers, "wandb is not installed (pip install wandb)", WRITERS) from None


def _task_source(where: str, one) -> None:
    """One task source {name, params}; `params.path` (the sources that read a local copy) must be readable."""
    from rl.task_mix import SOURCE_NAMES

    _one_of(f"{where}.name", one["name"], SOURCE_NAMES)
    params = one["params"]
    if "path" in params and not _readable_dir(str(params["path"])):
        raise ConfigError(f"{where}.params.path", params["path"], "no such readable folder", "the dataset's local copy")


def check_sft(config) -> None:
    data = config.data
    if bool(data.train_dir) != bool(data.eval_dir):
        raise ConfigError("data.eval_dir", data.eval_dir, "give both train_dir and eval_dir, or neither")
    if data.train_dir:
        _reward_data("data.train_dir", data.train_dir)
        _reward_data("data.eval_dir", data.eval_dir)
    else:
        _one_of("data.generator", data.generator, DATA_GENERATORS)
        from visual_erm.tasks import KINDS

        for kind in data.kinds:
            _one_of("data.kinds", kind, KINDS)
    _divides("batch_size", config.batch_size, jax.process_count(), "it is the global batch, split over hosts")


def check_grpo(config) -> None:
    from rl.grpo import GRPOConfig
    from rl.rewards import REWARDS
    from rl.trainer import check_config

    _one_of("reward", config.reward, tuple(REWARDS))
    if config.reward == "visual_erm" and config.judge.checkpoint:
        _hf_dir("judge.checkpoint", config.judge.checkpoint)
    try:
        grpo = GRPOConfig.from_block(config.grpo)
    except (TypeError, ValueError) as exc:
        raise ConfigError("grpo", "...", str(exc)) from None
    if config.tasks.sources is None:
        _task_source("tasks", config.tasks)
    else:
        for index, one in enumerate(config.tasks.sources):
            _task_source(f"tasks.sources[{index}]", one)
    if config.heldout.n:
        _task_source("heldout.tasks", config.heldout.tasks)
    check_config(config, grpo)  # the trainer's own checks (it runs them too, without the launcher)


def _declared(config) -> None:
    """Every key is one configs/common.py declares for the trainer, and none is missing: a block replaced
    whole (`c.heldout = ConfigDict(...)`) escapes the lock that refuses a single undeclared key."""
    extra, missing = undeclared(config)
    if extra:
        value = config
        for part in extra[0].split("."):
            value = value[part]
        raise ConfigError(extra[0], value, f"not a key of the {config.trainer} schema (configs/common.py)")
    if missing:
        raise ConfigError(missing[0], None, f"missing: the {config.trainer} schema (configs/common.py) declares it")


def check(config) -> None:
    """Raise ConfigError for the first value that cannot run."""
    _one_of("trainer", config.trainer, TRAINERS)
    _declared(config)
    if int(config.checkpoint_every) < 1:
        raise ConfigError("checkpoint_every", config.checkpoint_every, "must be positive", "integers >= 1")
    # A GRPO run of 0 steps is a warm start only (configs/tiny_shapes_policy.py: its step 0 is the product).
    least = 0 if config.trainer == "grpo" and int(config.warmstart.steps) > 0 else 1
    if int(config.total_steps) < least:
        raise ConfigError("total_steps", config.total_steps, "must be positive"
                          + (" (or 0 with warmstart.steps > 0: a warm start only)" if least else ""),
                          f"integers >= {least}")
    _mesh(config)
    _model(config)
    _writers(config)
    (check_sft if config.trainer == "visual_erm_sft" else check_grpo)(config)
