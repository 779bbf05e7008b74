"""Two GRPO steps of the tiny config on 8 CPU devices, as one process or one of two `jax.distributed` ones.

    python -m tests.rl.multihost_grpo REWARD POLICY_DIR WORKDIR OUT_JSON [PROCESS_ID PORT]

REWARD: `completion_length` (varies even for an untrained policy) or `visual_erm` (the shipped tiny
judge; POLICY_DIR then holds a warm-started policy, so that some samples render and each host has its
own number of pairs to judge). Each process has its own render pool and samples, renders and scores its block of
every global batch. Process 0 writes the step metrics (timings left out) to OUT_JSON and the
parameters to OUT_JSON.npz; every process writes how many pairs it judged per step to
OUT_JSON.judged.PROCESS_INDEX.
"""
import json
import os
import sys

PROCESSES, LOCAL_DEVICES = 2, 4


def completion_length(task, completion, rendered=None, critique=None, **_):
    """A reward that varies even for an untrained policy, so the compared updates are not zero."""
    return len(completion) / 100.0


def main(reward: str, policy_dir: str, workdir: str, out: str, process_id: int | None = None,
         port: int | None = None):
    devices = LOCAL_DEVICES * (2 if process_id is None else 1)
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    if process_id is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=PROCESSES,
                                   process_id=process_id)
    from rl.rewards import REWARDS, RewardFn
    from rl.trainer import GRPOTrainer
    from tests.rl.test_trainer import tiny_config

    REWARDS["completion_length"] = RewardFn(completion_length)
    # The Visual-ERM run starts from the tiny policy warm-started for 150 steps once, beforehand
    # (tests/rl/test_trainer.py's warm_policy_dir: about half its samples render, so groups carry signal;
    # from the shipped policy every group's reward is equal); the other run warm-starts here, across hosts.
    start = ({"warmstart.steps": 2, "warmstart.batch_size": 4} if reward == "completion_length"
             else {"warmstart.steps": 0})
    start["model.checkpoint"] = policy_dir
    config = tiny_config(**{"mesh_shape": (2, 4, 1), "reward": reward, "total_steps": 2, "checkpoint_every": 100,
                            "prompts_per_step": 4, "group_size": 4, "render_workers": 1, **start})
    trainer = GRPOTrainer(config, workdir)
    judged = []
    judge = trainer.rollouts.worker.judge
    if judge is not None:
        critique = judge.critique

        def counting(kinds, *args, **kwargs):
            judged.append(len(kinds))
            return critique(kinds, *args, **kwargs)

        judge.critique = counting
    try:
        trainer.start()
        metrics = [{k: v for k, v in trainer.rl_step(step).items() if not k.startswith("time/")} for step in (1, 2)]
        with open(f"{out}.judged.{jax.process_index()}", "w") as f:
            json.dump(judged, f)
        params = [np.asarray(multihost_utils.process_allgather(x, tiled=True)) for x in jax.tree.leaves(
            trainer.run.state.params)]
        if jax.process_index() == 0:
            with open(out, "w") as f:
                json.dump({"metrics": metrics}, f)
            np.savez(out + ".npz", *params)
    finally:
        trainer.close()
    if process_id is not None:
        jax.distributed.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:4], *(int(a) for a in args[4:]))
