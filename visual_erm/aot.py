"""The programs a Visual-ERM SFT run compiles, built abstractly for `launch.aot` from the trainer's own
functions, at the largest shapes its config allows: the global batch at the longest sequence bucket,
two of the largest images per pair, each host's patches padded to a bucket and gathered."""
from __future__ import annotations

from policy import aot
from policy.model import abstract_model
from policy.optimizer import make_optimizer
from policy.train_state import abstract_train_state
from visual_erm.train import make_sft_steps


def sft_programs(config, mesh, hosts: int) -> list:
    """[Program | Failed]: the train step and the held-out loss step."""
    model_config = aot.binned_model_config(aot.run_model_config(config.model), config.model, config.max_side)
    patches = model_config.vision_bin  # the largest image
    tx = make_optimizer(config.optimizer)
    model = abstract_model(model_config)
    parts, state = abstract_train_state(model, tx, mesh)
    step_fn, eval_step = make_sft_steps(config, parts, tx, state)
    rows, length = config.batch_size, max(config.seq_buckets)
    note = f"{rows} pairs x {length} tokens"
    try:
        num = hosts * aot.bucket(rows // hosts * 2 * patches, config.patch_buckets, "SFT batch patches")
    except ValueError as e:
        return [aot.Failed("train step", str(e), note), aot.Failed("eval step", str(e), note)]
    batch = aot.sequence_batch_spec(model_config, rows, length, num, mesh)
    note += f", {num} patches"
    text_params, vision_params = aot.matmul_params(model)
    forward = aot.forward_work(text_params, vision_params, rows * length, num, mesh.size)
    # The held-out loss runs `eval.batches` forwards every `eval.every` steps, beside the optimizer state.
    moments = {"Adam moments": aot.per_chip_bytes(state.opt_state)}
    return [aot.Program("train step", step_fn, (state, batch), note=note, ideal=aot.Work(flops=3 * forward.flops)),
            aot.Program("eval step", eval_step, (state.params, batch), note=note, outside=moments,
                        calls=config.eval.batches / config.eval.every, ideal=forward)]
