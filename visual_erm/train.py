"""Supervised fine-tuning of Visual-ERM: (reference, rendering) -> critique JSON.

    python -m launch.main --config=configs/tiny_erm.py --workdir=DIR

One jitted, sharded train step; periodic held-out evaluation (loss, critique
parse rate, bench F1 of sampled critiques); orbax checkpoints of the train
state and the data iterator, so a killed run restarted with the same command
continues exactly where its last checkpoint left off.
"""
from __future__ import annotations

import logging
import time

import jax
import numpy as np

from policy import checkpointing, metric_writers, paths
from policy.config import runtime_options
from policy.hf_io import load_pretrained
from policy.host_batch import device_batch
from policy.learning_rate import last_learning_rate
from policy.logprobs import masked_nll, teacher_forced_logprobs
from policy.optimizer import make_optimizer
from policy.processor import Processor
from policy.sharding import mesh_from_config
from policy.train_state import init_train_state, make_train_step, merge_model, state_shardings
from visual_erm import data as data_lib
from visual_erm import records
from visual_erm.base_model import prepare_base_model, prepare_reward_data

log = logging.getLogger(__name__)


def sft_loss(model, batch, rng, *, chunk_size=None):
    """Mean negative log-likelihood of the critique tokens (target_mask) under teacher forcing."""
    del rng
    logprobs, _ = teacher_forced_logprobs(model, batch, chunk_size=chunk_size)
    return masked_nll(logprobs, batch["target_mask"]), {"target_tokens": batch["target_mask"].sum()}


def make_sft_steps(config, parts, tx, state):
    """(jit train step, jit eval step) of a run: what `train` runs and what `launch.aot` compiles."""
    def loss_fn(m, b, r):
        return sft_loss(m, b, r, chunk_size=config.loss_chunk_size)

    step_fn = make_train_step(parts, tx, loss_fn, state_shardings(state))
    eval_step = jax.jit(lambda params, b: sft_loss(merge_model(parts, params), b, None,
                                                   chunk_size=config.loss_chunk_size)[0])
    return step_fn, eval_step


def per_process_batch(config) -> int:
    """`config.batch_size` is the global batch; each process collates its share."""
    hosts = jax.process_count()
    if config.batch_size % hosts:
        raise ValueError(f"batch_size={config.batch_size} is a global batch: it must divide evenly over {hosts} hosts")
    return config.batch_size // hosts


def evaluate_loss(eval_step, state, batches, mesh) -> float:
    losses = [float(eval_step(state.params, device_batch(b, mesh))) for b in batches]
    return float(np.mean(losses)) if losses else float("nan")


def evaluate_judge(model, processor: Processor, eval_dir: str, config) -> dict:
    """Parse rate and bench F1 of the model's critiques on the first held-out pairs."""
    from visual_erm import bench
    from visual_erm.judge import GREEDY_SETTINGS, VisualERM
    from visual_erm.schema import parse_critique

    examples = []
    for example in records.read_examples(eval_dir):
        examples.append(example)
        if len(examples) >= config.eval.critiques:
            break
    judge = VisualERM(model, processor, max_new_tokens=config.eval.max_new_tokens, batch_size=config.batch_size,
                      seed=config.seed, settings=GREEDY_SETTINGS if config.eval.greedy else None)
    images = [example.images() for example in examples]
    kinds = [example.kind for example in examples]
    critiques = judge.critique(kinds, [ref for ref, _ in images], [cand for _, cand in images])
    references = [parse_critique(example.critique, example.kind) for example in examples]
    scores = bench.evaluate(critiques, references, kind=kinds)
    return {"parse_rate": float(np.mean([c.valid for c in critiques])),
            "bench_f1_soft": scores["overall"]["soft"]["f1"], "bench_f1_hard": scores["overall"]["hard"]["f1"]}


def train(config, workdir: str) -> dict:
    """Run (or resume) SFT as `config` says; returns the final metrics record."""
    workdir = paths.resolve(workdir)
    if jax.process_count() > 1 and config.eval.critiques:
        raise NotImplementedError("sampled-critique evaluation is not split across hosts yet (each host would "
                                  "critique the same pairs); on a multi-host run pass --config.eval.critiques=0 "
                                  "(held-out loss is still evaluated)")
    checkpointing.write_config(workdir, config)
    data_dir, eval_dir = prepare_reward_data(config, workdir)
    base_dir = prepare_base_model(config, workdir, data_dir)
    mesh = mesh_from_config(config)
    model_config, model = load_pretrained(base_dir, mesh=mesh, **runtime_options(config.model))
    processor = Processor.from_pretrained(base_dir, max_side=config.max_side)
    tx = make_optimizer(config.optimizer)
    parts, state = init_train_state(model, tx, seed=config.seed, mesh=mesh)
    del model
    step_fn, eval_step = make_sft_steps(config, parts, tx, state)

    def make(folder, **kw):
        return data_lib.make_dataset(
            folder, processor, model_config, batch_size=per_process_batch(config), seed=config.seed,
            process_index=jax.process_index(), process_count=jax.process_count(),
            seq_buckets=tuple(config.seq_buckets), patch_buckets=tuple(config.patch_buckets), **kw)

    train_iter = iter(make(data_dir).to_iter_dataset())
    eval_batches = list(make(eval_dir, shuffle=False, num_epochs=1))[: config.eval.batches]

    ckpt = checkpointing.Checkpointer(paths.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints)
    restored = ckpt.restore(checkpointing.abstract_like(state))
    start = 0
    if restored is not None:
        start, state, extra = restored
        train_iter.set_state(extra["data"])
        log.info("resumed from step %d", start)
    writer = metric_writers.MetricWriter(workdir, resume_step=start, writers=config.writers,
                                         run_config=config)
    progress = metric_writers.Progress(config.total_steps, start, desc="visual-erm sft")
    record = {}
    for step in range(start + 1, config.total_steps + 1):
        began = time.perf_counter()
        state, metrics = step_fn(state, device_batch(next(train_iter), mesh))
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics["time/step_s"] = time.perf_counter() - began
        metrics["learning_rate"] = last_learning_rate(config.optimizer, state.opt_state)
        if step % config.eval.every == 0 or step == config.total_steps:
            log.info("evaluation at step %d: held-out loss over %d batches", step, len(eval_batches))
            began = time.perf_counter()
            metrics["eval_loss"] = evaluate_loss(eval_step, state, eval_batches, mesh)
            if config.eval.critiques:
                log.info("evaluation at step %d: critiquing %d held-out pairs", step, config.eval.critiques)
                metrics.update(evaluate_judge(merge_model(parts, state.params), processor, eval_dir, config))
            metrics["time/eval_s"] = time.perf_counter() - began
            log.info("evaluation at step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})
        record = writer.write(step, metrics)
        progress.update(1, loss=metrics["loss"])
        if step % config.checkpoint_every == 0 or step == config.total_steps:
            ckpt.save(step, state, {"data": train_iter.get_state()})
    progress.close()
    ckpt.close()
    writer.close()
    if jax.process_index() == 0:
        metric_writers.plot_curves(paths.join(workdir, "metrics.jsonl"), paths.join(workdir, "loss.png"),
                                   ("loss", "eval_loss"), title="Visual-ERM SFT")
    return record
