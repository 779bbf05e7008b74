"""Where a training run's starting model and reward data come from.

Real runs point the config at local directories (a Hugging Face Qwen3-VL
checkpoint, reward-data folders written by `make_data`). Tiny runs make both
inside the workdir: reward data from the generators, then a tiny checkpoint
whose tokenizer is trained on that data's own prompts, critiques and code.
"""
from __future__ import annotations

import os

import jax

from policy import tiny_checkpoint
from visual_erm import make_data, records
from visual_erm.bench_synth import HELD_OUT_SEED
from visual_erm.prompts import judge_prompt, policy_prompt, revision_prompt
from visual_erm.tasks import KINDS


def require_single_process(what: str, instead: str) -> None:
    """Refuse, on a multi-host run, to build something in the workdir that every host would race to write."""
    if jax.process_count() > 1:
        raise ValueError(f"{what} in the run's workdir is for single-process runs (every host would race "
                         f"to write it); on a multi-host run pass {instead}")


def prepare_reward_data(config, workdir: str) -> tuple[str, str]:
    """(train folder, held-out folder); generated under workdir/data when the config asks."""
    data = config.data
    if data.get("train_dir"):
        for location in (data.train_dir, data.eval_dir):  # a make_data folder or "tfds:NAME:SPLIT@DATA_DIR"
            try:
                records.reward_source(location)
            except records.RecordError:
                raise FileNotFoundError(f"no reward-*.array_record shards in {location}") from None
        return data.train_dir, data.eval_dir
    require_single_process("generating reward data", "--config.data.train_dir=... --config.data.eval_dir=... "
                    "(make them once with python -m visual_erm.make_data)")
    train_dir, eval_dir = (os.path.join(workdir, "data", split) for split in ("train", "eval"))
    if data.get("generator", "tasks") == "shapes":  # the main job's toy task (visual_erm/shapes_data.py)
        from visual_erm import shapes_data

        shapes_data.write_shapes_data(train_dir, data.generate_train, seed=0, workers=data.render_workers)
        shapes_data.write_shapes_data(eval_dir, data.generate_eval, seed=shapes_data.HELD_OUT_SEED,
                                      workers=data.render_workers)
        return train_dir, eval_dir
    kinds = tuple(data.kinds)
    make_data.run(train_dir, data.generate_train, kinds, workers=data.render_workers, seed=0,
                  shard_size=data.shard_size)
    make_data.run(eval_dir, data.generate_eval, kinds, workers=data.render_workers, seed=HELD_OUT_SEED,
                  shard_size=data.shard_size)
    return train_dir, eval_dir


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
    if model.get("checkpoint"):
        if not os.path.exists(os.path.join(model.checkpoint, "config.json")):
            raise FileNotFoundError(f"{model.checkpoint} is not a Hugging Face checkpoint directory (no config.json)")
        return model.checkpoint
    out = os.path.join(workdir, "base_model")
    if not os.path.exists(os.path.join(out, "config.json")):
        require_single_process("building a tiny base model", "--config.model.checkpoint=HF_DIR")
        tiny_checkpoint.build(out + ".partial", tokenizer_corpus(data_dir), vocab_size=model.vocab_size,
                              max_pixels=model.max_pixels, seed=config.seed,
                              text_overrides=model.get("text", None) and model.text.to_dict(),
                              vision_overrides=model.get("vision", None) and model.vision.to_dict())
        os.replace(out + ".partial", out)
    return out
