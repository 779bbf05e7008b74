"""Export a training checkpoint (GRPO policy or Visual-ERM SFT judge) as a Hugging Face directory.

    python -m launch.export_hf --checkpoint=WORKDIR_OR_STEP_DIR --out=DIR [--step=N] [--dtype=bfloat16]

`--checkpoint` is a run's workdir (its newest readable step is exported, older ones are tried
if the newest is unreadable), its `checkpoints/` folder, or one step folder
`WORKDIR/checkpoints/<N>` (exactly that step); any of them may be a gs:// URL, as may `--out`
(written locally in the cache, then uploaded). The run's `run_config.json` says which trainer wrote
it and so where its base model is: `model.checkpoint`, else `WORKDIR/base_model` (visual_erm_sft)
or `WORKDIR/untrained_base_policy` (grpo). `--base_model` overrides that. The output holds sharded
safetensors, config.json, generation_config.json, the base model's tokenizer and
preprocessor files, the chat template and processor configs (so `AutoProcessor` +
`Qwen3VLForConditionalGeneration` load it the standard way), and a README.md model card naming the
run, its config and the step, with a transformers snippet that tests run.

`--checkpoint` may also be an existing Hugging Face directory (config.json + safetensors): it is
written again with the current writer and processor files, its own README.md / MODEL_CARD.md
kept. That is how an older export, or the shipped `visual_erm/checkpoints/tiny_shapes_judge`, is
brought up to date.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from collections.abc import Sequence

from absl import flags

from policy import cli, paths
from policy.checkpointing import RUN_CONFIG

TRAINERS = {"visual_erm_sft": ("base_model", "Visual-ERM judge (supervised fine-tuning)"),
            "grpo": ("untrained_base_policy", "vision-to-code policy (GRPO)")}


FLAGS = flags.FlagValues()
flags.DEFINE_string("checkpoint", None, "run workdir, its checkpoints/ folder, a step folder, or an HF directory",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "the Hugging Face directory to write (must not hold a model)", flag_values=FLAGS)
flags.DEFINE_integer("step", None, "export this step (default: newest readable)", lower_bound=0, flag_values=FLAGS)
flags.DEFINE_string("base_model", None, "base HF directory (default: from the run's config)", flag_values=FLAGS)
flags.DEFINE_enum("dtype", None, ["float32", "bfloat16", "float16"],
                  "dtype of the written tensors (default: the run's model.dtype)", flag_values=FLAGS)
flags.DEFINE_float("max_shard_gb", 5.0, "largest safetensors shard, in GiB", lower_bound=1e-9, flag_values=FLAGS)
flags.DEFINE_list("mesh_shape", None, "restore sharded over this mesh, e.g. 1,8,1 (default: one device)",
                  flag_values=FLAGS)
flags.mark_flags_as_required(["checkpoint", "out"], flag_values=FLAGS)


def parse_args(argv: Sequence[str] | None = None) -> flags.FlagValues:
    """Parse and check the command line before anything is restored."""
    args = cli.parse(FLAGS, argv, __doc__)
    cli.check(paths.exists(args.checkpoint), f"--checkpoint={args.checkpoint} does not exist (expected a run "
              "workdir, its checkpoints/ folder, a step folder, or a Hugging Face directory)")
    cli.check(not paths.exists(paths.join(args.out, "config.json")),
              f"--out={args.out} already holds a model (config.json); choose another --out or remove it")
    cli.check(args.base_model is None or paths.exists(paths.join(args.base_model, "config.json")),
              f"--base_model={args.base_model}: no config.json there (expected a Hugging Face directory)")
    cli.check(args.mesh_shape is None or all(x.isdigit() and int(x) > 0 for x in args.mesh_shape),
              f"--mesh_shape={','.join(args.mesh_shape or [])}: expected positive integers, e.g. 1,8,1")
    return args


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
    """The resolved config the run wrote (`policy.checkpointing.write_config`).

    A finished run's record, not a config to run, so it is not read through configs/common.py: runs written
    before a key was declared lack it (and a `--base_model` export may have no record at all), so the few
    keys read from it here keep a fallback, the value such a run ran with.
    """
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


# How to use an export with transformers: in every model card, and run by tests/launch/test_export_hf.py.
TRANSFORMERS_SNIPPET = '''from PIL import Image
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

path = "PATH"  # this directory, or its hub id
processor = AutoProcessor.from_pretrained(path)  # chat template, PIL image processor, tokenizer
model = Qwen3VLForConditionalGeneration.from_pretrained(path)
image = Image.new("RGB", (64, 64), "white")  # your image
messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                         {"type": "text", "text": "Describe the image."}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                       return_dict=True, return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
print(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))'''
TRANSFORMERS_NOTE = (
    "`generate(**inputs)` needs every key the processor returns (`mm_token_type_ids` places the image "
    "features; without it generation silently goes wrong). transformers builds Qwen3-VL's processor "
    "with a video processor that needs `torchvision` (images themselves go through PIL): install the "
    "torchvision that matches your torch.")


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
        "", "## Load with transformers", "", "```python", TRANSFORMERS_SNIPPET, "```", "", TRANSFORMERS_NOTE, "",
        "In JAX:", "", "```python",
        use_jax, "```", "", "## Training config", "", "```json", json.dumps(config, indent=1, sort_keys=True),
        "```", ""]
    return "\n".join(lines)


CARD_FILES = ("README.md", "MODEL_CARD.md")


def is_hf_dir(path: str) -> bool:
    """A Hugging Face model directory (config.json and safetensors weights), not a training run."""
    return (os.path.exists(os.path.join(path, "config.json"))
            and any(os.path.exists(os.path.join(path, name))
                    for name in ("model.safetensors", "model.safetensors.index.json")))


def reexport(args: flags.FlagValues) -> dict:
    """Write an existing HF directory again (weights, processor files), keeping its model card."""
    import shutil

    import jax.numpy as jnp

    from policy.export import export_pretrained, load_hf_model

    source = os.path.abspath(args.checkpoint)
    with open(os.path.join(source, "config.json"), encoding="utf-8") as f:
        dtype = args.dtype or json.load(f).get("dtype") or "float32"
    restored = load_hf_model(source, dtype=dtype)
    result = export_pretrained(restored, source, args.out, dtype=jnp.dtype(dtype),
                               max_shard_bytes=int(args.max_shard_gb * 2**30))
    for name in CARD_FILES:
        if os.path.exists(os.path.join(source, name)):
            shutil.copy2(os.path.join(source, name), os.path.join(result["out"], name))
    result.update(source=source, dtype=dtype)
    return result


def export(args: flags.FlagValues) -> dict:
    """Restore the checkpoint's parameters and write the Hugging Face directory; returns a summary."""
    import jax.numpy as jnp

    from policy.export import export_pretrained, load_checkpoint_model

    if os.path.isdir(args.checkpoint) and is_hf_dir(args.checkpoint):
        if args.step is not None or args.base_model or args.mesh_shape:
            raise ValueError(f"{args.checkpoint} is a Hugging Face directory: --step, --base_model and --mesh_shape "
                             "apply only to training runs")
        return reexport(args)
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

        mesh = make_mesh(tuple(int(x) for x in args.mesh_shape))
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
