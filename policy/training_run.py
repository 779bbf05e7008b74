"""What every trainer sets up and runs the same way (SFT: `visual_erm.train`, GRPO: `rl.trainer`).

Set-up: the workdir (resolved, its config recorded), the mesh, the model created sharded from a
Hugging Face directory with its processor, the optimizer's train state and the checkpointer. Resume:
the newest readable checkpoint gives back the state, the step and the position of every data iterator
the run tracks, so a killed run restarted with the same command repeats an uninterrupted one. Steps:
start+1..total_steps, each one's metrics (with the learning rate) written to JSONL/TensorBoard beside a
progress bar, a checkpoint every `checkpoint_every` steps and at the last; the run's curve at the end.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import optax
from flax import nnx

from policy import checkpointing, metric_writers, paths
from policy.config import runtime_options
from policy.hf_io import load_pretrained
from policy.learning_rate import last_learning_rate
from policy.processor import Processor
from policy.sharding import mesh_from_config
from policy.train_state import init_train_state


class TrainingRun:
    """A run's workdir, mesh, model, processor, train state, checkpointer and metric writer."""

    def __init__(self, config, workdir: str):
        self.config, self.workdir = config, paths.resolve(workdir)
        checkpointing.write_config(self.workdir, config)
        self.mesh = mesh_from_config(config)
        self._iterators: dict = {}  # checkpoint name -> iterator whose position is saved with the state

    def load(self, model_dir: str, tx: optax.GradientTransformation, *, keep_steps: tuple[int, ...] = (),
             **processor_options) -> nnx.Module:
        """The model of `model_dir` (every parameter created in its sharding, attending in vision bins of
        the largest image its processor emits: `Qwen3VLConfig.vision_bin`), its processor, the
        train state of `tx` and the checkpointer (keeping the newest `keep_checkpoints` and
        `keep_steps`). Returns the model: its variables are now the state's."""
        self.processor = Processor.from_pretrained(model_dir, **processor_options)
        self.model_config, model = load_pretrained(model_dir, mesh=self.mesh, **runtime_options(self.config.model),
                                                   vision_bin=self.processor.image_processor.max_image_patches())
        self.parts, self.state = init_train_state(model, tx, seed=self.config.seed, mesh=self.mesh)
        self.checkpointer = checkpointing.Checkpointer(paths.join(self.workdir, "checkpoints"),
                                                       max_to_keep=self.config.keep_checkpoints, keep_steps=keep_steps)
        return model

    def track(self, name: str, iterator) -> None:
        """Save `iterator`'s position (`get_state`/`set_state`) under `name` with every checkpoint."""
        self._iterators[name] = iterator

    def restore(self) -> int | None:
        """Resume from the newest readable checkpoint (state and tracked iterators): its step, or None."""
        restored = self.checkpointer.restore(checkpointing.abstract_like(self.state))
        if restored is None:
            return None
        step, self.state, extra = restored
        for name, iterator in self._iterators.items():
            iterator.set_state(extra[name])
        return step

    def save(self, step: int) -> None:
        self.checkpointer.save(step, self.state, {name: it.get_state() for name, it in self._iterators.items()})

    def open_log(self, start: int, desc: str) -> metric_writers.MetricWriter:
        """The metric writer (records after `start` dropped: a resumed run rewrites them) and progress bar."""
        self.writer = metric_writers.MetricWriter(self.workdir, resume_step=start, writers=self.config.writers,
                                                  run_config=self.config)
        self.progress = metric_writers.Progress(self.config.total_steps, start, desc=desc)
        return self.writer

    def run_steps(self, start: int, step_fn: Callable[[int], dict], *, shown: str,
                  after_write: Callable[[int], None] | None = None) -> dict:
        """Steps start+1..total_steps of `step_fn(step) -> metrics` (which moves `self.state`): each
        step's metrics written with the learning rate, `after_write(step)` after, `shown` on the
        progress bar, checkpoints. Returns the last record written."""
        config, record = self.config, {}
        for step in range(start + 1, config.total_steps + 1):
            metrics = step_fn(step)
            metrics["learning_rate"] = last_learning_rate(config.optimizer, self.state.opt_state)
            record = self.writer.write(step, metrics)
            if after_write is not None:
                after_write(step)
            self.progress.update(1, **{shown: metrics[shown]})
            if step % config.checkpoint_every == 0 or step == config.total_steps:
                self.save(step)
        self.progress.close()
        self.writer.close()
        return record

    def plot(self, png: str, keys: tuple[str, ...], title: str) -> None:
        """The run's curves of `keys` from metrics.jsonl as `png` in the workdir (first host only)."""
        if jax.process_index() == 0:
            metric_writers.plot_curves(paths.join(self.workdir, "metrics.jsonl"), paths.join(self.workdir, png),
                                       keys, title=title)

    def close(self) -> None:
        self.checkpointer.close()
