"""Supervised fine-tuning of Visual-ERM: (reference, rendering) -> critique JSON.

    python -m launch.main --config=configs/tiny_erm.py --workdir=DIR

One jitted, sharded train step; periodic held-out evaluation (loss, critique
parse rate, bench F1 of sampled critiques); orbax checkpoints of the train
state and the data iterator, so a killed run restarted with the same command
continues exactly where its last checkpoint left off.
"""
from __future__ import annotations

import functools
import logging
import time

import jax
import numpy as np

from policy.host_batch import device_batch
from policy.logprobs import sft_loss
from policy.optimizer import make_optimizer
from policy.processor import Processor
from policy.train_state import make_train_step, merge_model, state_shardings
from policy.training_run import TrainingRun
from visual_erm import data as data_lib
from visual_erm import records
from visual_erm.base_model import prepare_base_model, prepare_reward_data

log = logging.getLogger(__name__)


def make_sft_steps(config, parts, tx, state):
    """(jit train step, jit eval step) of a run: what `train` runs and what `launch.aot` compiles."""
    loss_fn = functools.partial(sft_loss, chunk_size=config.loss_chunk_size)
    step_fn = make_train_step(parts, tx, loss_fn, state_shardings(state))

    def eval_loss(params, batch):
        return loss_fn(merge_model(parts, params), batch, None)[0]

    return step_fn, jax.jit(eval_loss)


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
    if jax.process_count() > 1 and config.eval.critiques:
        raise NotImplementedError("sampled-critique evaluation is not split across hosts yet (each host would "
                                  "critique the same pairs); on a multi-host run pass --config.eval.critiques=0 "
                                  "(held-out loss is still evaluated)")
    run = TrainingRun(config, workdir)
    data_dir, eval_dir = prepare_reward_data(config, run.workdir)
    base_dir = prepare_base_model(config, run.workdir, data_dir)
    tx = make_optimizer(config.optimizer)
    run.load(base_dir, tx, max_side=config.max_side)
    step_fn, eval_step = make_sft_steps(config, run.parts, tx, run.state)

    def dataset(folder, **options):
        return data_lib.make_dataset(
            folder, run.processor, run.model_config, batch_size=per_process_batch(config), seed=config.seed,
            process_index=jax.process_index(), process_count=jax.process_count(),
            seq_buckets=tuple(config.seq_buckets), patch_buckets=tuple(config.patch_buckets), **options)

    train_iter = iter(dataset(data_dir).to_iter_dataset())
    eval_batches = list(dataset(eval_dir, shuffle=False, num_epochs=1))[: config.eval.batches]
    run.track("data", train_iter)
    start = run.restore()
    if start is not None:
        log.info("resumed from step %d", start)
    start = start or 0
    run.open_log(start, "visual-erm sft")

    def step(step: int) -> dict:
        began = time.perf_counter()
        run.state, metrics = step_fn(run.state, device_batch(next(train_iter), run.mesh))
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics["time/step_s"] = time.perf_counter() - began
        if step % config.eval.every == 0 or step == config.total_steps:
            log.info("evaluation at step %d: held-out loss over %d batches", step, len(eval_batches))
            began = time.perf_counter()
            metrics["eval_loss"] = evaluate_loss(eval_step, run.state, eval_batches, run.mesh)
            if config.eval.critiques:
                log.info("evaluation at step %d: critiquing %d held-out pairs", step, config.eval.critiques)
                metrics.update(evaluate_judge(merge_model(run.parts, run.state.params), run.processor, eval_dir,
                                              config))
            metrics["time/eval_s"] = time.perf_counter() - began
            log.info("evaluation at step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})
        return metrics

    try:
        record = run.run_steps(start, step, shown="loss")
    finally:
        run.close()
    run.plot("loss.png", ("loss", "eval_loss"), "Visual-ERM SFT")
    return record
