"""The programs a GRPO run compiles, built abstractly for `launch.aot` from the trainer's own functions.

Shapes are the largest the run can produce from its config: prompts padded to the longest sequence
bucket, the largest image the processor emits (`max_side`), one sampler call per micro-batch, the
log-prob and update batches of one micro-step's rows (prompt + `max_new_tokens`), and judge calls of
`judge.batch_size` pairs per host (as `rl.models.prepare_judge` gives the judge). A shape no bucket
holds is reported as the error the run would hit.

The optimizer (MultiSteps included) comes from `rl.optimizers.grpo_optimizers` and the update and
log-prob programs from `rl.policy_update.make_grpo_steps`, as the trainer builds them. Each program carries
its calls per step and the run's state live beside it (`resident_state`): the fp32 master weights,
Adam moments, gradient accumulator, fp32 KL reference and the judge's weights, less what it takes as
arguments.
"""
from __future__ import annotations

import dataclasses

import ml_collections
from flax import nnx

from policy import aot
from policy.model import abstract_model
from policy.processor import DEFAULT_SEQ_BUCKETS
from policy.sampler import SamplingParams
from policy.train_state import abstract_train_state
from rl.grpo import GRPOConfig
from rl.optimizers import grpo_optimizers
from rl.policy_update import make_grpo_steps
from visual_erm.judge import GREEDY_SETTINGS, PUBLISHED_SETTINGS, judge_patch_buckets, judge_vision_bin

JUDGE_TEXT_TOKENS = 512  # chat template + judge instruction (~200 tokens today), beside the two images
JUDGE_KIND = "chart"  # the published chart/svg settings (presence penalty: one [rows, vocab] carry)


def _stop_ids(config) -> tuple[int, ...]:
    eos = config.eos_token_id
    return tuple(eos) if isinstance(eos, tuple) else (() if eos is None else (int(eos),))


def _judge_block(config) -> ml_collections.ConfigDict:
    """What `rl.models.prepare_judge` loads: the judge checkpoint in the policy's compute dtype, or a tiny
    fp32 judge built like the tiny policy (no decoder overrides)."""
    judge = config.judge
    preset = judge.preset or config.model.preset
    real = bool(judge.checkpoint or preset)
    dtype = config.model.dtype if real else "float32"
    return ml_collections.ConfigDict({
        "checkpoint": judge.checkpoint, "preset": preset, "vocab_size": config.model.vocab_size,
        "max_pixels": config.model.max_pixels, "dtype": dtype, "param_dtype": dtype, "scan_layers": False,
        "remat": "none", "text": None})


WEIGHTS, MOMENTS, ACCUMULATOR, REFERENCE, JUDGE = ("fp32 weights", "Adam moments", "grad accumulator",
                                                  "fp32 reference", "judge weights")


def resident_state(config, state, mesh) -> dict[str, int]:
    """Bytes per chip of the state a GRPO run keeps on device across its phases: the train state
    (weights, optimizer moments, MultiSteps' accumulator), the KL reference (a copy of the weights
    `rl.policy_update.PolicyUpdate.fix_reference` keeps) and the judge's weights in its load layout."""
    accumulator = aot.per_chip_bytes(state.opt_state.acc_grads) if hasattr(state.opt_state, "acc_grads") else 0
    resident = {WEIGHTS: aot.per_chip_bytes(state.params),
                MOMENTS: aot.per_chip_bytes(state.opt_state) - accumulator}
    if accumulator:
        resident[ACCUMULATOR] = accumulator
    if config.grpo.kl_coef:
        resident[REFERENCE] = resident[WEIGHTS]
    if config.reward == "visual_erm":
        judge_config = aot.run_model_config(_judge_block(config))
        resident[JUDGE] = aot.per_chip_bytes(aot.abstract_state(nnx.split(abstract_model(judge_config))[1], mesh))
    return resident


def grpo_programs(config, mesh, hosts: int) -> list:
    """[Program | Failed] for the policy sampler, the judge sampler, the log-prob forwards and the update."""
    model_config = aot.binned_model_config(aot.run_model_config(config.model), config.model, config.max_side)
    patches = model_config.vision_bin  # the largest image
    model = abstract_model(model_config)
    tx, warm_tx = grpo_optimizers(config)
    parts, state = abstract_train_state(model, tx, mesh)
    resident = resident_state(config, state, mesh)

    def outside(*held: str) -> dict[str, int]:
        return {name: size for name, size in resident.items() if name not in held}

    text_params, vision_params = aot.matmul_params(model)
    prompt_len = max(config.seq_buckets)
    prompts, group, new = config.prompts_per_step, config.group_size, config.max_new_tokens
    per_call = prompts // config.micro_batches
    programs = []

    def add(name, build):
        try:
            programs.extend(build())
        except ValueError as e:  # a shape no bucket holds: the run would fail the same way
            programs.append(aot.Failed(name, str(e)))

    params = SamplingParams(temperature=float(config.sampling.temperature), top_p=float(config.sampling.top_p),
                            top_k=int(config.sampling.top_k),
                            suppress_ids=(model_config.image_token_id, model_config.vision_start_token_id))
    grpo = GRPOConfig.from_block(config.grpo)
    steps = make_grpo_steps(config, grpo, parts, tx, warm_tx, state, params)
    add("policy sampler", lambda: aot.sampler_programs(
        "policy", model, mesh, batch=per_call,
        prompt_len=aot.bucket(prompt_len, DEFAULT_SEQ_BUCKETS, "policy prompt"),
        num_patches=hosts * aot.bucket(-(-per_call // hosts) * patches, config.patch_buckets, "policy prefill patches"),
        num_samples=group, max_new=new, params=params, stop_ids=_stop_ids(model_config),
        pad_id=model_config.pad_token_id or 0, calls=config.micro_batches, outside=outside(), weights=WEIGHTS))

    if config.reward == "visual_erm":
        judge_block = _judge_block(config)
        judge_config = aot.run_model_config(judge_block)
        judge_config = dataclasses.replace(judge_config, vision_bin=judge_vision_bin(  # as VisualERM.from_pretrained
            aot.run_image_processor(judge_block, judge_config, None)))
        judge_batch = int(config.judge.batch_size)
        settings = (GREEDY_SETTINGS if config.judge.greedy else PUBLISHED_SETTINGS)[JUDGE_KIND]
        judge_patches = aot.run_image_processor(judge_block, judge_config, settings.max_side).max_image_patches()
        tokens = 2 * judge_patches // judge_config.vision.spatial_merge_size ** 2 + JUDGE_TEXT_TOKENS
        judge_params = dataclasses.replace(settings.params, suppress_ids=(judge_config.image_token_id,
                                                                          judge_config.vision_start_token_id))
        add("judge sampler", lambda: aot.sampler_programs(
            "judge", abstract_model(judge_config), mesh, batch=judge_batch * hosts,
            prompt_len=aot.bucket(tokens, DEFAULT_SEQ_BUCKETS, "judge prompt"),
            num_patches=hosts * aot.bucket(judge_batch * 2 * judge_patches,
                                           judge_patch_buckets(judge_batch, judge_config.vision_bin),
                                           "judge prefill patches"),
            num_samples=1, max_new=int(config.judge.max_new_tokens), params=judge_params,
            stop_ids=_stop_ids(judge_config), pad_id=judge_config.pad_token_id or 0,
            calls=prompts * group / (judge_batch * hosts), outside=outside(), weights=JUDGE))

    rows, length = prompts * group, prompt_len + new

    # One update, and one old/reference log-prob forward, sees rows / (mini_batches x grad_accumulation)
    # of the rollout (rl.policy_update.PolicyUpdate.updates, row_logprobs).
    update_rows = rows // grpo.loop.micro_steps

    def update_batch(n: int, with_logprobs: bool):
        extra = {"advantages": ((n,), "float32"), "valid": ((n,), "float32"), "rows": ((n,), "float32")}
        if with_logprobs:
            extra["old_logprobs"] = ((n, length - 1), "float32")
            if grpo.loss.kl_coef:
                extra["ref_logprobs"] = ((n, length - 1), "float32")
            if grpo.loop.train_distribution != "sampling":
                extra["is_weights"] = ((n, length - 1), "float32")
        # Rows share their prompt's patches (rl.batch.build_batch: each image encoded once per prompt);
        # a mini-batch carries every prompt's patches of its host and a per-row patch_start.
        num = hosts * aot.bucket(prompts // hosts * patches, config.patch_buckets, "update batch patches")
        if num:
            extra["patch_start"] = ((n,), "int32")
        return aot.sequence_batch_spec(model_config, n, length, num, mesh, extra)

    micro_steps = rows // update_rows
    # Ideal work counts the images of the rows' own prompts (a batch carries every prompt's patches).
    row_patches = -(-update_rows // group) * patches

    def forward(passes: int) -> aot.Work:
        return aot.forward_work(text_params, vision_params, update_rows * length, row_patches, mesh.size, passes)

    note = f"{update_rows} rows x {length} tokens"
    add("log-probs", lambda: [aot.Program(
        "old log-probs", steps.logprobs, (state.params, update_batch(update_rows, False)), note=note,
        calls=micro_steps, outside=outside(WEIGHTS), ideal=forward(1))])
    if grpo.loss.kl_coef:
        add("log-probs", lambda: [aot.Program(
            "ref log-probs", steps.tempered_logprobs, (state.params, update_batch(update_rows, False)), note=note,
            calls=micro_steps, outside=outside(REFERENCE), ideal=forward(1))])
    add("update step", lambda: [aot.Program(
        "update step", steps.update, (state, update_batch(update_rows, True)), note=note,
        calls=grpo.loop.epochs * micro_steps, outside=outside(WEIGHTS, MOMENTS, ACCUMULATOR),
        ideal=forward(3))])
    if config.warmstart.steps:
        # PolicyUpdate.warm_start swaps in the warm-start optimizer's state and keeps the RL one aside.
        ws = config.warmstart.batch_size
        warm_state = state.replace(opt_state=abstract_train_state(model, warm_tx, mesh)[1].opt_state)
        add("warm-start step", lambda: [aot.Program(
            "warm-start step", steps.warm_start,
            (warm_state, aot.sequence_batch_spec(model_config, ws, length, hosts * aot.bucket(
                ws // hosts * patches, config.patch_buckets, "warm-start patches"), mesh)),
            note=f"{ws} rows x {length} tokens, before RL (no calls in an RL step)", calls=0,
            outside=outside(WEIGHTS))])
    return programs
