"""Two SFT steps on 8 CPU devices, as one process or as one of two `jax.distributed` processes.

    python -m tests.visual_erm.multihost_sft MODEL_DIR DATA_DIR OUT_JSON [PROCESS_ID PORT]

Global batch s holds examples 8s .. 8s+7; process p of two feeds rows 4p .. 4p+3 of it
(collated on its own, so its sequence and patch padding differ from the global batch's).
Writes each step's (loss, gradient norm) and the final per-parameter (sum, sum of squares) to
OUT_JSON (process 0 only).
"""
import json
import os
import sys

PROCESSES, LOCAL_DEVICES, GLOBAL_BATCH, STEPS = 2, 4, 8, 2


def main(model_dir: str, data_dir: str, out: str, process_id: int | None = None, port: int | None = None):
    devices = 2 * LOCAL_DEVICES if process_id is None else LOCAL_DEVICES
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax
    import jax.numpy as jnp

    if process_id is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=PROCESSES,
                                   process_id=process_id)
    from policy.hf_io import load_pretrained
    from policy.host_batch import device_batch
    from policy.logprobs import sft_loss
    from policy.optimizer import make_optimizer
    from policy.processor import Processor
    from policy.sharding import make_mesh
    from policy.train_state import init_train_state, make_train_step, state_shardings
    from visual_erm import data as data_lib

    assert len(jax.devices()) == 2 * LOCAL_DEVICES
    mesh = make_mesh((2, 4, 1))
    config, model = load_pretrained(model_dir, mesh=mesh)
    processor = Processor.from_pretrained(model_dir)
    source = data_lib.RewardSource(data_dir)
    features = [data_lib.example_features(source[i], processor) for i in range(GLOBAL_BATCH * STEPS)]
    collate = data_lib.Collator(config, processor.pad_token_id, (128, 256, 512, 1024), (64, 256, 1024))
    tx = make_optimizer({"learning_rate": 1e-3, "total_steps": 10})
    parts, state = init_train_state(model, tx, mesh=mesh)
    step = make_train_step(parts, tx, sft_loss, state_shardings(state))
    losses = []
    for s in range(STEPS):
        rows = features[s * GLOBAL_BATCH:(s + 1) * GLOBAL_BATCH]
        if process_id is not None:
            local = GLOBAL_BATCH // PROCESSES
            rows = rows[process_id * local:(process_id + 1) * local]
        state, metrics = step(state, device_batch(collate(rows), mesh))
        losses.append([float(metrics["loss"]), float(metrics["grad_norm"])])
    sums = jax.jit(lambda p: [jnp.stack([x.sum(), (x * x).sum()]) for x in jax.tree.leaves(p)])(state.params)
    if jax.process_index() == 0:
        with open(out, "w") as f:
            json.dump({"losses": losses, "sums": [[float(v) for v in x] for x in sums]}, f)
    if process_id is not None:
        jax.distributed.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:3], *(int(a) for a in args[3:]))
