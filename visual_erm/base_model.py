"""Where a training run's starting model and reward data come from.

Real runs point the config at directories (a Hugging Face Qwen3-VL checkpoint,
reward-data folders written by `make_data`, TFDS locations), local or gs:// (copied
once into the cache `policy.paths` names). Tiny runs make both inside the workdir
(local or a URL): reward data from the generators, then a tiny checkpoint
whose tokenizer is trained on that data's own prompts, critiques and code.
"""
from __future__ import annotations

import jax

from policy import paths, tiny_checkpoint
from visual_erm import make_data, records
from visual_erm.bench.synth import HELD_OUT_SEED
from visual_erm.data_location import local_location
from visual_erm.prompts import judge_prompt, policy_prompt, revision_prompt
from visual_erm.tasks import KINDS


def require_single_process(what: str, instead: str) -> None:
    """Refuse, on a multi-host run, to build something in the workdir that every host would race to write."""
    if jax.process_count() > 1:
        raise ValueError(f"{what} in the run's workdir is for single-process runs (every host would race "
                         f"to write it); on a multi-host run pass {instead}")


def _generated(folder: str, generate) -> str:
    """A local folder holding `folder`'s generated data: `generate(local)` writes it (resumably); a URL
    folder is generated in its cache copy and uploaded once, a later run copies it back."""
    if not paths.is_url(folder):
        generate(folder)
        return folder
    if paths.is_published(folder):
        return paths.local_copy(folder)
    local = paths.cache_path(folder)
    generate(local)
    paths.publish(local, folder)
    return local


def prepare_reward_data(config, workdir: str) -> tuple[str, str]:
    """(train location, held-out location), local; generated under workdir/data when the config asks."""
    data = config.data
    if data.train_dir:
        located = []
        for location in (data.train_dir, data.eval_dir):  # a make_data folder or "tfds:NAME:SPLIT@DATA_DIR"
            location = local_location(location)
            try:
                records.reward_source(location)
            except records.RecordError:
                raise FileNotFoundError(f"no reward-*.array_record shards in {location}") from None
            located.append(location)
        return located[0], located[1]
    require_single_process("generating reward data", "--config.data.train_dir=... --config.data.eval_dir=... "
                    "(make them once with python -m visual_erm.make_data)")
    train_dir, eval_dir = (paths.join(workdir, "data", split) for split in ("train", "eval"))
    if data.generator == "shapes":  # the main job's toy task (visual_erm/shapes_data.py)
        from visual_erm import shapes_data

        def generate(out, n, seed):
            shapes_data.write_shapes_data(out, n, seed=seed, workers=config.render_workers)
        held_out_seed = shapes_data.HELD_OUT_SEED
    else:
        def generate(out, n, seed):
            make_data.run(out, n, tuple(data.kinds), workers=config.render_workers, seed=seed,
                          shard_size=data.shard_size)
        held_out_seed = HELD_OUT_SEED
    return (_generated(train_dir, lambda out: generate(out, data.generate_train, 0)),
            _generated(eval_dir, lambda out: generate(out, data.generate_eval, held_out_seed)))


def tokenizer_corpus(data_dir: str, repeat_prompts: int = 50):
    """Texts a tiny tokenizer must encode well: prompts, critiques, and task code."""
    for _ in range(repeat_prompts):
        for kind in KINDS:
            yield judge_prompt(kind)
            yield policy_prompt(kind)
            yield revision_prompt(kind, "", "")
    for example in records.read_examples(data_dir):
        yield example.critique
        yield example.reference_code
        yield example.candidate_code


def prepare_base_model(config, workdir: str, data_dir: str) -> str:
    """A Hugging Face Qwen3-VL directory: the configured one, or a tiny one built here once."""
    model = config.model
    if model.checkpoint:
        if not paths.exists(paths.join(model.checkpoint, "config.json")):
            raise FileNotFoundError(f"{model.checkpoint} is not a Hugging Face checkpoint directory (no config.json)")
        return paths.local_copy(model.checkpoint)
    out = paths.join(workdir, "base_model")
    if not paths.exists(paths.join(out, "config.json")):
        require_single_process("building a tiny base model", "--config.model.checkpoint=HF_DIR")
        with paths.built_folder(out, last="config.json") as local:
            tiny_checkpoint.build(local, tokenizer_corpus(data_dir), vocab_size=model.vocab_size,
                                  max_pixels=model.max_pixels, seed=config.seed,
                                  text_overrides=None if model.text is None else model.text.to_dict(),
                                  vision_overrides=None if model.vision is None else model.vision.to_dict())
    return paths.local_copy(out)
