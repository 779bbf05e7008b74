"""Export a training checkpoint (GRPO policy or Visual-ERM SFT judge) as a Hugging Face directory.

    python -m launch.export_hf --checkpoint=WORKDIR_OR_STEP_DIR --out=DIR [--step=N] [--dtype=bfloat16]

`--checkpoint` is a run's workdir (its newest readable step is exported, older ones are tried
if the newest is unreadable), its `checkpoints/` folder, or one step folder
`WORKDIR/checkpoints/<N>` (exactly that step); any of them may be a gs:// URL, as may `--out`
(written locally in the cache, then uploaded). The run's `run_config.json` says which trainer wrote
it and so where its base model is: `model.checkpoint`, else `WORKDIR/base_model` (visual_erm_sft)
or `WORKDIR/policy_model` (grpo). `--base_model` overrides that. The output holds sharded
safetensors, config.json, generation_config.json, the base model's tokenizer and
preprocessor files, and a README.md model card naming the run, its config and the step.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from collections.abc import Sequence

from policy import paths
from policy.checkpointing import RUN_CONFIG

TRAINERS = {"visual_erm_sft": ("base_model", "Visual-ERM judge (supervised fine-tuning)"),
            "grpo": ("policy_model", "vision-to-code policy (GRPO)")}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m launch.export_hf", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="run workdir, its checkpoints/ folder, or a step folder")
    parser.add_argument("--out", required=True, help="the Hugging Face directory to write (must not hold a model)")
    parser.add_argument("--step", type=int, default=None, help="export this step (default: newest readable)")
    parser.add_argument("--base_model", default=None, help="base HF directory (default: from the run's config)")
    parser.add_argument("--dtype", default=None, help="dtype of the written tensors (default: the run's model.dtype)")
    parser.add_argument("--max_shard_gb", type=float, default=5.0, help="largest safetensors shard, in GiB")
    parser.add_argument("--mesh_shape", default=None,
                        help="restore sharded over this mesh, e.g. 1,8,1 (default: one device)")
    return parser.parse_args(argv)


def resolve_run(checkpoint: str, step: int | None) -> tuple[str, str, int | None]:
    """(workdir, checkpoints dir, step) for a workdir, a checkpoints/ folder or a step folder."""
    from policy.export import CheckpointNotFoundError, checkpoint_steps

    path = paths.resolve(checkpoint)
    if not paths.isdir(path):
        raise CheckpointNotFoundError(f"{path} does not exist (expected a run workdir or a checkpoint step folder)")
    if paths.isdir(paths.join(path, "checkpoints")):
        return path, paths.join(path, "checkpoints"), step
    name, parent = os.path.basename(path), os.path.dirname(path)
    if name.isdigit():
        if step is not None and step != int(name):
            raise ValueError(f"--step={step} contradicts the step folder {path}")
        return os.path.dirname(parent), parent, int(name)
    if checkpoint_steps(path):
        return parent, path, step
    raise CheckpointNotFoundError(f"{path} holds no checkpoints/ folder and no step folders: not a training run")


def read_run_config(workdir: str) -> dict:
    """The resolved config the run wrote (`policy.checkpointing.write_config`)."""
    path = paths.join(workdir, RUN_CONFIG)
    if not paths.exists(path):
        raise FileNotFoundError(f"{path} is missing: cannot tell which trainer wrote this run (pass --base_model)")
    return json.loads(paths.read_text(path))


def base_model_dir(config: dict, workdir: str) -> str:
    """Where the run's starting model is, as `visual_erm.base_model` / `rl.models` put it."""
    trainer = config.get("trainer")
    if trainer not in TRAINERS:
        raise ValueError(f"{workdir}/{RUN_CONFIG} names trainer {trainer!r}; expected one of {sorted(TRAINERS)}")
    checkpoint = (config.get("model") or {}).get("checkpoint")
    return checkpoint or paths.join(workdir, TRAINERS[trainer][0])


def model_card(config: dict, *, workdir: str, base_dir: str, step: int, dtype: str, date: str) -> str:
    """README.md for the export: what it is, where it came from, how to load it, the full run config."""
    trainer = config.get("trainer", "unknown")
    role = TRAINERS.get(trainer, ("", "Qwen3-VL model"))[1]
    base = (config.get("model") or {}).get("checkpoint") or ""
    front = ["---", "library_name: transformers", "pipeline_tag: image-text-to-text",
             f"tags: [qwen3_vl, visual-erm-jax, {trainer}]"]
    front += [f"base_model: {base}"] if base and not (os.path.isabs(base) or paths.is_url(base)) else []  # hub ids
    front += ["---"]
    rows = [("role", role), ("trainer", f"`{trainer}`"), ("step", str(step)), ("run", f"`{workdir}`"),
            ("run config", f"`{paths.join(workdir, RUN_CONFIG)}` (reproduced below)"),
            ("base model", f"`{base_dir}`"), ("dtype", dtype), ("exported", date)]
    use_jax = ("from visual_erm.judge import VisualERM\njudge = VisualERM.from_pretrained(PATH)"
               if trainer == "visual_erm_sft"
               else "from policy import load_pretrained\nconfig, model = load_pretrained(PATH)")
    lines = front + ["", f"# Qwen3-VL {role}", "",
                     "Exported from an orbax training checkpoint of visual-erm-jax by `python -m launch.export_hf`.",
                     "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [
        "", "## Load", "", "```python", "from transformers import Qwen3VLForConditionalGeneration",
        "model = Qwen3VLForConditionalGeneration.from_pretrained(PATH)", "```", "", "In JAX:", "", "```python",
        use_jax, "```", "", "## Training config", "", "```json", json.dumps(config, indent=1, sort_keys=True),
        "```", ""]
    return "\n".join(lines)


def export(args: argparse.Namespace) -> dict:
    """Restore the checkpoint's parameters and write the Hugging Face directory; returns a summary."""
    import jax.numpy as jnp

    from policy.export import export_pretrained, load_checkpoint_model

    workdir, checkpoints_dir, step = resolve_run(args.checkpoint, args.step)
    has_config = paths.exists(paths.join(workdir, RUN_CONFIG))
    config = read_run_config(workdir) if has_config or not args.base_model else {}
    base_dir = paths.local_copy(args.base_model or base_model_dir(config, workdir))
    model = config.get("model") or {}
    run_dtype = model.get("dtype", "float32")
    overrides = {k: model[k] for k in ("scan_layers", "remat") if k in model}
    mesh = None
    if args.mesh_shape:
        from policy.sharding import make_mesh

        mesh = make_mesh(tuple(int(x) for x in args.mesh_shape.split(",")))
    restored = load_checkpoint_model(checkpoints_dir, base_dir, step=step, dtype=run_dtype, mesh=mesh, **overrides)
    dtype = args.dtype or run_dtype
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    card = model_card(config, workdir=workdir, base_dir=base_dir, step=restored.step, dtype=dtype, date=date)
    def write(out: str) -> dict:
        return export_pretrained(restored, base_dir, out, dtype=jnp.dtype(dtype), model_card=card,
                                 max_shard_bytes=int(args.max_shard_gb * 2**30))

    if paths.is_url(args.out):  # written in the cache, uploaded with config.json last
        if paths.exists(paths.join(args.out, "config.json")):
            raise FileExistsError(f"{args.out} already holds a model; choose another --out or remove it")
        with paths.built_folder(args.out, last="config.json") as local:
            result = dict(write(local), out=paths.resolve(args.out))
    else:
        result = write(args.out)
    result.update(trainer=config.get("trainer"), workdir=workdir, base_model=base_dir, dtype=dtype)
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = export(parse_args(argv))
    print(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
