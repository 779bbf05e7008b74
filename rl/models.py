"""Where a GRPO run's policy and its reward's models (the judge, an embedder) come from.

Real runs name Hugging Face directories (`model.checkpoint`, `judge.checkpoint`;
local or gs://, whose files are copied once into the cache `policy.paths` names).
Tiny runs build both inside the workdir (a local folder or a URL), with a small BPE
trained on the run's own prompts and task code, so nothing is downloaded. A
tiny judge built this way is UNTRAINED (its critiques rarely parse): it makes
the loop run end to end; point `judge.checkpoint` at an exported
`configs/tiny_erm.py` run for a judge that has learned something.
"""
from __future__ import annotations

import itertools
import logging

import jax.numpy as jnp

from policy import paths, tiny_checkpoint
from rl.rewards import VisionEmbedder
from rl.task_mix import make_task_dataset
from visual_erm.base_model import require_single_process
from visual_erm.judge import GREEDY_SETTINGS, VisualERM
from visual_erm.prompts import judge_prompt, policy_prompt, revision_prompt

log = logging.getLogger(__name__)
_CORPUS_TASKS = 200
# The workdir's randomly initialised tiny policy: the base the run loads, never the trained policy (that is
# in checkpoints/: `launch.export_hf --checkpoint=WORKDIR [--step=0]`).
UNTRAINED_POLICY = "untrained_base_policy"


def _corpus(config, pool):
    tasks = make_task_dataset(config.tasks, seed=config.seed + 1, renderer=pool)
    codes = [t.reference_code or "" for t in itertools.islice(iter(tasks.to_iter_dataset()), _CORPUS_TASKS)]
    kinds = ("chart", "table", "svg")
    fixed = [judge_prompt(k) for k in kinds] + [policy_prompt(k) for k in kinds]
    fixed += [revision_prompt(k, "", "") for k in kinds]
    fixed += ['{"errors": [{"category": "shape_error", "severity": 2, "location": "the circle", '
              '"description": "the circle is too small"}]}', "```svg\n", "```python\n", "```markdown\n", "\n```"]
    return fixed * 20 + [f"```svg\n{code}\n```" for code in codes] * 5


def _tiny(config, workdir: str, name: str, pool, seed: int) -> str:
    """A local folder holding the tiny model `workdir/name`, built (and published there) once."""
    out = paths.join(workdir, name)
    if not paths.exists(paths.join(out, "config.json")):
        require_single_process(f"building a tiny {name}", "--config.model.checkpoint=HF_DIR and "
                               "--config.judge.checkpoint=HF_DIR")
        vision = config.model.vision  # None: Qwen3VLConfig.tiny()'s vision tower
        with paths.built_folder(out, last="config.json") as local:
            tiny_checkpoint.build(local, _corpus(config, pool), vocab_size=config.model.vocab_size,
                                  max_pixels=config.model.max_pixels, seed=seed,
                                  vision_overrides=vision.to_dict() if vision else None)
    return paths.local_copy(out)


def prepare_policy(config, workdir: str, pool) -> str:
    """A Hugging Face directory for the policy: the configured one, or a tiny one built once."""
    if config.model.checkpoint:
        return paths.local_copy(config.model.checkpoint)
    return _tiny(config, workdir, UNTRAINED_POLICY, pool, config.seed)


def prepare_judge(config, workdir: str, mesh, pool=None) -> VisualERM:
    """The Visual-ERM judge: from `judge.checkpoint`, or an untrained tiny stand-in."""
    settings = GREEDY_SETTINGS if config.judge.greedy else None
    if config.judge.checkpoint:
        return VisualERM.from_pretrained(paths.local_copy(config.judge.checkpoint),
                                         dtype=jnp.dtype(config.model.dtype), mesh=mesh,
                                         max_new_tokens=config.judge.max_new_tokens, settings=settings,
                                         reasks=config.judge.reasks, batch_size=config.judge.batch_size)
    log.warning("no judge.checkpoint: using an UNTRAINED tiny judge (the loop runs; its rewards mean little)")
    path = _tiny(config, workdir, "judge_model", pool, config.seed + 7)
    return VisualERM.from_pretrained(path, mesh=mesh, max_new_tokens=config.judge.max_new_tokens, settings=settings,
                                     reasks=config.judge.reasks, batch_size=config.judge.batch_size)


def prepare_reward(config, workdir: str, mesh, pool, policy, image_processor) -> tuple[VisualERM | None, dict]:
    """The reward role of a GRPO run: (judge, reward_deps) for `rl.rollout.RolloutWorker`, what the
    reward needs beside each sample: the judge (reward "visual_erm"), the policy's own vision tower as
    an embedder ("embedding_cosine") and the config's `reward_params`."""
    judge = prepare_judge(config, workdir, mesh, pool) if config.reward == "visual_erm" else None
    deps = {}
    if config.reward == "embedding_cosine":
        deps["embedder"] = VisionEmbedder(policy, image_processor)
    deps.update(config.reward_params)
    return judge, deps
