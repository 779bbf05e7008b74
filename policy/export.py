"""Orbax training checkpoint -> Hugging Face Qwen3-VL directory.

A run's checkpoint (`policy.checkpointing.Checkpointer`: item "state" is a
`policy.train_state.TrainState`) holds parameters, optimizer moments and RNG.
Export reads only the parameters: an orbax partial restore into the shapes of
`policy.model.abstract_model` of the run's base model, each array placed on its
sharding (one device, or a mesh). The model is then written by
`policy.hf_io.save_pretrained`, the base directory's tokenizer and image settings are copied
beside it, and `policy.hf_processor_files` adds the chat template (our one Jinja source) and the
processor configs, so the result loads the standard transformers way (`AutoProcessor` +
`Qwen3VLForConditionalGeneration`) and with `policy.load_pretrained` / `Processor.from_pretrained`.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh, SingleDeviceSharding

from policy import paths
from policy.config import Qwen3VLConfig
from policy.hf_io import load_pretrained, save_pretrained
from policy.hf_processor_files import write_processor_files
from policy.model import Qwen3VL, abstract_model
from policy.sharding import state_shardings
from policy.train_state import merge_model, split_model

log = logging.getLogger(__name__)

# What a Hugging Face directory holds besides weights and config, copied from the base model; the chat
# template and processor configs are then (re)written by `write_processor_files`.
PROCESSOR_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "preprocessor_config.json", "LICENSE*",
)


class CheckpointNotFoundError(FileNotFoundError):
    """No orbax checkpoint (or not the requested step) in the directory."""


class CheckpointRestoreError(RuntimeError):
    """Checkpoints exist, but none of those tried could be read into the base model's parameters."""


@dataclasses.dataclass(frozen=True)
class Restored:
    step: int
    config: Qwen3VLConfig
    model: Qwen3VL
    extra: dict  # the checkpoint's JSON item (data-iterator state, ...)


def checkpoint_steps(checkpoints_dir: str) -> list[int]:
    """Steps saved under `checkpoints_dir` (numeric sub-folders), ascending; [] when there are none."""
    return sorted(int(name) for name in paths.listdir(checkpoints_dir)
                  if name.isdigit() and paths.isdir(paths.join(checkpoints_dir, name)))


def abstract_params(config: Qwen3VLConfig, mesh: Mesh | None = None) -> tuple[Any, dict]:
    """(ModelParts, pure dict of ShapeDtypeStructs with shardings) for the parameters of `config`."""
    model = abstract_model(config)
    parts, params = split_model(model)
    if mesh is None:
        device = SingleDeviceSharding(jax.devices()[0])
        shardings = jax.tree.map(lambda _: device, params)
    else:
        _, state, _ = nnx.split(model, nnx.Param, ...)
        shardings = nnx.to_pure_dict(state_shardings(state, mesh))
    return parts, jax.tree.map(lambda p, s: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=s), params, shardings)


def _restore_args(abstract: dict):
    return ocp.args.PyTreeRestore(
        item={"params": abstract},
        restore_args=jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s.sharding, dtype=s.dtype),
                                  {"params": abstract}),
        partial_restore=True,
    )


def restore_params(checkpoints_dir: str, abstract: dict, *, step: int | None = None) -> tuple[int, dict, dict]:
    """(step, params, extra) from the newest readable checkpoint, or exactly `step`.

    Like `Checkpointer.restore`, an unreadable newest step is skipped with a warning in favour of
    the previous one; a requested `step` that cannot be read is an error, as is finding nothing.
    """
    checkpoints_dir = paths.resolve(checkpoints_dir)
    steps = checkpoint_steps(checkpoints_dir)
    if not steps:
        raise CheckpointNotFoundError(f"no orbax checkpoints (numeric step folders) in {checkpoints_dir}")
    if step is not None and step not in steps:
        raise CheckpointNotFoundError(f"no checkpoint for step {step} in {checkpoints_dir}; saved steps: {steps}")
    manager = ocp.CheckpointManager(checkpoints_dir, item_names=("state", "extra"),
                                    options=ocp.CheckpointManagerOptions(read_only=True))
    failures = []
    try:
        for candidate in [step] if step is not None else steps[::-1]:
            try:
                restored = manager.restore(candidate, args=ocp.args.Composite(
                    state=_restore_args(abstract), extra=ocp.args.JsonRestore()))
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:300]}"
                failures.append(f"step {candidate}: {reason}")
                log.warning("checkpoint step %s in %s is unreadable (%s); trying an older one",
                            candidate, checkpoints_dir, reason)
                continue
            return candidate, restored.state["params"], dict(restored.extra or {})
    finally:
        manager.close()
    raise CheckpointRestoreError(
        f"could not restore the parameters from {checkpoints_dir} (is the base model the one this run "
        f"trained?):\n  " + "\n  ".join(failures))


def load_checkpoint_model(checkpoints_dir: str, base_dir: str, *, step: int | None = None, dtype="float32",
                          mesh: Mesh | None = None, **config_overrides) -> Restored:
    """The model of a training checkpoint, its architecture read from the base model's config.json.

    `dtype` is the run's `model.dtype` (the dtype its parameters were trained and saved in);
    `config_overrides` (scan_layers, remat) must match how the run built its model.
    """
    if not os.path.exists(os.path.join(base_dir, "config.json")):
        raise FileNotFoundError(f"{base_dir} is not a Hugging Face checkpoint directory (no config.json)")
    name = jnp.dtype(dtype).name
    config = Qwen3VLConfig.from_hf(base_dir, dtype=name, param_dtype=name, **config_overrides)
    parts, abstract = abstract_params(config, mesh)
    found, params, extra = restore_params(checkpoints_dir, abstract, step=step)
    return Restored(found, config, merge_model(parts, params), extra)


def load_hf_model(hf_dir: str, *, dtype="float32") -> Restored:
    """An existing Hugging Face directory as the thing to export (re-export: refreshes its processor
    files and writes the weights again through the current writer); its step is unknown (-1)."""
    config, model = load_pretrained(hf_dir, dtype=jnp.dtype(dtype))
    return Restored(-1, config, model, {})


def copy_processor_files(base_dir: str, out: str) -> list[str]:
    """Copy the tokenizer and image-settings files of `base_dir` into `out`; returns their names."""
    copied = []
    for name in sorted(os.listdir(base_dir)):
        path = os.path.join(base_dir, name)
        if os.path.isfile(path) and any(fnmatch.fnmatch(name, pattern) for pattern in PROCESSOR_FILES):
            shutil.copy2(path, os.path.join(out, name))
            copied.append(name)
    return copied


def _merge_generation_config(base_dir: str, out: str) -> None:
    """Keep the base model's sampling defaults; token ids come from the exported config."""
    base = os.path.join(base_dir, "generation_config.json")
    if not os.path.exists(base):
        return
    with open(base) as f:
        merged = json.load(f)
    target = os.path.join(out, "generation_config.json")
    with open(target) as f:
        merged.update(json.load(f))
    with open(target, "w") as f:
        json.dump(merged, f, indent=2)


def export_pretrained(restored: Restored, base_dir: str, out: str, *, dtype=None, model_card: str | None = None,
                      max_shard_bytes: int = 5 * 2**30) -> dict:
    """Write `restored.model` to `out` as a Hugging Face directory; returns a summary dict.

    `dtype`: the dtype of the written tensors (None: the parameters' own). Files are written
    into `out + ".partial"` and renamed at the end, so `out` is never half written.
    """
    out = os.path.abspath(out)
    if os.path.exists(os.path.join(out, "config.json")):
        raise FileExistsError(f"{out} already holds a model; choose another --out or remove it")
    tmp = out + ".partial"
    write = jax.process_index() == 0
    if write and os.path.exists(tmp):
        shutil.rmtree(tmp)
    weights = save_pretrained(restored.config, restored.model, tmp, max_shard_bytes=max_shard_bytes, dtype=dtype)
    if not write:
        return {"out": out, "step": restored.step, "weights": weights}
    _merge_generation_config(base_dir, tmp)
    copied = copy_processor_files(base_dir, tmp)
    copied += [name for name in write_processor_files(tmp) if name not in copied]
    if model_card is not None:
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(model_card)
    if os.path.isdir(out) and not os.listdir(out):
        os.rmdir(out)
    os.replace(tmp, out)
    return {"out": out, "step": restored.step, "weights": weights, "copied": copied}


__all__ = ["CheckpointNotFoundError", "CheckpointRestoreError", "PROCESSOR_FILES", "Restored", "abstract_params",
           "checkpoint_steps", "copy_processor_files", "export_pretrained", "load_checkpoint_model", "load_hf_model",
           "restore_params"]
