"""Orbax checkpoints of a whole run: train state, data-iterator state, RNG, step.

Saves are asynchronous and keep the newest N. Restoring walks from the newest
step back: a checkpoint that fails to restore (truncated file, half-written
step) is skipped with a warning in favour of the previous good one. Every run
also writes its resolved config next to its checkpoints, as `run_config.json` (not
`config.json`, which tools take for a Hugging Face model config). Directories may be
local or gs:// URLs (`policy.paths`; orbax writes arrays to GCS through tensorstore).
"""
from __future__ import annotations

import json
import logging
from typing import Any

import jax
import orbax.checkpoint as ocp

from policy import paths

RUN_CONFIG = "run_config.json"

log = logging.getLogger(__name__)


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) for restoring into the layout of `tree`."""
    def leaf(x):
        if isinstance(x, jax.Array):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
        return x
    return jax.tree.map(leaf, tree)


def write_config(directory: str, config: Any) -> str:
    """run_config.json (resolved ml_collections config) in `directory` (process 0 writes); returns its path."""
    path = paths.join(paths.resolve(directory), RUN_CONFIG)
    if jax.process_index() != 0:
        return path
    if hasattr(config, "to_json_best_effort"):
        text = config.to_json_best_effort(indent=1, sort_keys=True)
    else:
        text = json.dumps(config, indent=1, sort_keys=True, default=str)
    return paths.write_text(path, text)


class Checkpointer:
    """`save(step, state, extra)`; `restore(abstract_state) -> (step, state, extra) | None`.

    `extra` is a JSON-able dict: data-iterator state, host RNG, anything small.
    """

    def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True,
                 keep_steps: tuple[int, ...] = ()):
        """`keep_steps` are never rotated away (GRPO keeps step 0, the policy RL started from)."""
        self.directory = paths.resolve(directory)
        keep = ocp.checkpoint_managers
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=async_save, cleanup_tmp_directories=True,
            preservation_policy=keep.AnyPreservationPolicy(
                [keep.LatestN(max_to_keep), *([keep.CustomSteps(list(keep_steps))] if keep_steps else [])]),
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "extra"))

    def save(self, step: int, state: Any, extra: dict | None = None, *, force: bool = True) -> bool:
        return self.manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), extra=ocp.args.JsonSave(extra or {})),
            force=force,
        )

    def steps(self) -> list[int]:
        self.manager.reload()
        return sorted(self.manager.all_steps())

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[int, Any, dict] | None:
        """Newest restorable checkpoint (or `step`); None when there is none."""
        candidates = [step] if step is not None else self.steps()[::-1]
        for candidate in candidates:
            try:
                restored = self.manager.restore(
                    candidate,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract_state), extra=ocp.args.JsonRestore()
                    ),
                )
            except Exception as exc:
                log.warning("checkpoint step %s in %s is unreadable (%s: %s); trying an older one",
                            candidate, self.directory, type(exc).__name__, str(exc)[:200])
                if step is not None:
                    raise
                continue
            return candidate, restored.state, dict(restored.extra or {})
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
