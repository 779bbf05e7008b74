"""Ahead-of-time compilation for a TPU topology this machine does not have: does a run fit, before the pod?

libtpu compiles for any TPU topology on a CPU-only host (`jax.experimental.topologies`). A run's
programs are lowered from ShapeDtypeStructs carrying NamedShardings on a mesh of the topology's
devices (no weights, no allocation) and compiled; XLA's memory analysis then says what each program
needs on every chip, to which the run's state that stays live outside the program (`Program.outside`:
optimizer moments, the reference policy, the judge) is added. FLOPs and HBM bytes come from the
optimized HLO with loops counted (`policy.hlo_cost`), and the step estimate from them
(`policy.step_time`). The trainers and the sampler hand over the very functions they jit
(`visual_erm.aot`, `rl.aot`), so what is compiled here is what the run compiles.

Names follow Cloud TPU: v5p-N counts TensorCores (two per megacore chip: v5p-64 is 32 chips),
v5e-N and v6e-N count chips (one core each).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from policy import hlo_cost
from policy.config import Qwen3VLConfig, runtime_options
from policy.host_batch import patch_sharding
from policy.image_processor import QWEN3_VL_MIN_PIXELS, ImageProcessor, pick_bucket
from policy.model import abstract_model
from policy.sampler import (
    DEFAULT_DECODE_BUCKETS,
    SamplingParams,
    _decode,
    _phase_steps,
    _phases,
    _prefill,
    sampling_reshard,
)
from policy.sharding import (
    MESH_AXES,
    SAMPLING_RULES,
    batch_shards,
    data_sharding,
    make_mesh,
    named_sharding,
    sampling_mesh,
    state_shardings,
)
from policy.step_time import CHIPS, Chip, Phase, Work, decode_work, estimate_step, forward_work, step_line
from policy.text import KVCache
from policy.vision import VisionInputs

GiB = 2**30
HBM_BYTES = {family: chip.hbm_bytes for family, chip in CHIPS.items()}
_CHIP_CONFIG = {"v5p": "megacore", "v5e": "default", "v6e": "default"}
_CORES_PER_CHIP = {"v5p": 2, "v5e": 1, "v6e": 1}
INSTALL_HINT = 'pip install -e ".[tpu]"  (jax[tpu] at the installed jax version: it brings libtpu)'


class LibTPUMissing(RuntimeError):
    """libtpu is not installed, so no TPU program can be compiled here."""


@dataclasses.dataclass(frozen=True)
class Topology:
    name: str  # e.g. "v5p-64", or "2 x v5p-128" for two slices
    family: str  # "v5p" | "v5e" | "v6e"
    shape: tuple[int, ...]  # chips along each torus axis of one slice
    devices: tuple  # one jax device per chip, every slice's
    hbm_bytes: int  # per chip
    slices: int = 1  # slices joined by DCN (MaxText's compile_topology_num_slices)

    @property
    def chips(self) -> int:
        return len(self.devices)

    @property
    def hosts(self) -> int:
        return len({d.process_index for d in self.devices})

    @property
    def chip(self) -> Chip:
        return CHIPS[self.family]


def chip_grid(family: str, chips: int) -> tuple[int, ...]:
    """Torus shape of a slice: v5p 3-D from 2x2x1 (4 chips) doubling the smallest axis (last first);
    v5e/v6e 2-D from 1x1 doubling the smaller axis (last first), as Cloud TPU lays slices out."""
    if chips < 1 or chips & (chips - 1):
        raise ValueError(f"{family}-{chips}: only power-of-two slices are known here")
    if family == "v5p":
        if chips < 4:
            raise ValueError("the smallest v5p slice is v5p-8 (4 chips)")
        dims = [2, 2, 1]
    else:
        dims = [1, 1]
    while math.prod(dims) < chips:
        smallest = min(dims)
        i = max(j for j, d in enumerate(dims) if d == smallest)
        dims[i] *= 2
    return tuple(dims)


def parse_topology(name: str) -> tuple[str, int]:
    """'v5p-64' -> ('v5p', 32 chips); 'v5e-256' -> ('v5e', 256); 'v6e-64' -> ('v6e', 64)."""
    m = re.fullmatch(r"(v5p|v5e|v6e)-(\d+)", name.strip().lower())
    if not m:
        raise ValueError(f"unknown TPU topology {name!r}; expected v5p-N, v5e-N or v6e-N (e.g. v5p-64)")
    family, count = m.group(1), int(m.group(2))
    cores = _CORES_PER_CHIP[family]
    if count % cores:
        raise ValueError(f"{name}: v5p-N counts TensorCores, two per chip, so N must be even")
    return family, count // cores


def require_libtpu() -> None:
    import importlib.util

    if importlib.util.find_spec("libtpu") is None:
        raise LibTPUMissing(f"compiling for a TPU topology needs libtpu, which is not installed: {INSTALL_HINT}")


def topology(name: str, num_slices: int = 1) -> Topology:
    """The devices of `num_slices` copies of a named TPU slice joined by DCN, for compilation only (no
    TPU needed, libtpu is)."""
    if num_slices < 1:
        raise ValueError(f"num_slices must be >= 1, got {num_slices}")
    family, chips = parse_topology(name)
    require_libtpu()
    from jax.experimental import topologies

    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")  # no metadata server: we are not on a TPU VM
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")  # compiling only: other processes may hold libtpu
    grid = chip_grid(family, chips)
    desc = topologies.get_topology_desc(
        platform="tpu", topology_name=f"{family}:{'x'.join(map(str, grid))}",
        chip_config_name=_CHIP_CONFIG[family], chips_per_host_bounds=(2, 2, 1) if chips >= 4 else (*grid, 1)[:3],
        num_slices=num_slices)
    label = name if num_slices == 1 else f"{num_slices} x {name}"
    return Topology(label, family, grid, tuple(desc.devices), HBM_BYTES[family], num_slices)


def topology_mesh(topo: Topology, mesh_shape: Sequence[int] | None) -> Mesh:
    """`config.mesh_shape` (data, fsdp, tensor) over the topology's chips; empty: all on fsdp, and with
    several slices `data` over the slices (`policy.sharding.make_mesh`)."""
    if mesh_shape and math.prod(mesh_shape) != topo.chips:
        raise ValueError(f"mesh_shape {tuple(mesh_shape)} needs {math.prod(mesh_shape)} chips; {topo.name} has "
                         f"{topo.chips}")
    return make_mesh(tuple(mesh_shape) if mesh_shape else None, MESH_AXES, devices=topo.devices)


# ---------------------------------------------------------------------------------------------
# Abstract inputs
# ---------------------------------------------------------------------------------------------
def rows_spec(shape, dtype, mesh: Mesh, batch_axis: int = 0) -> jax.ShapeDtypeStruct:
    """A per-row array as `host_batch.put_rows` lays it out (rows over the batch axes)."""
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype),
                                sharding=data_sharding(mesh, len(shape), batch_axis, tuple(shape)))


def replicated_spec(shape, dtype, mesh: Mesh) -> jax.ShapeDtypeStruct:
    """An array every chip holds in full."""
    return jax.ShapeDtypeStruct(tuple(shape), dtype, sharding=NamedSharding(mesh, PartitionSpec()))


def image_specs(config: Qwen3VLConfig, num_patches: int, mesh: Mesh) -> tuple:
    """(pixel_values, VisionInputs) specs for `num_patches` padded patches, as the batches carry them
    (`host_batch.put_patches`: split over the patch axes)."""
    def spec(shape, dtype):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=patch_sharding(num_patches, len(shape), mesh))

    meta = VisionInputs(spec((num_patches, 4), jnp.int32), spec((num_patches, 4), jnp.float32),
                        spec((num_patches, 2), jnp.int32), spec((num_patches,), jnp.int32))
    return spec((num_patches, config.vision.patch_dim), jnp.float32), meta


def sequence_batch_spec(config: Qwen3VLConfig, rows: int, length: int, num_patches: int | None, mesh: Mesh,
                        extra: dict | None = None) -> dict:
    """The dict a training/log-prob step consumes: token rows, M-RoPE positions, masks, images.
    `target_mask` covers the length - 1 predicted tokens, as both input pipelines build it."""
    batch = {"input_ids": rows_spec((rows, length), jnp.int32, mesh),
             "attention_mask": rows_spec((rows, length), jnp.int32, mesh),
             "positions": rows_spec((3, rows, length), jnp.int32, mesh, batch_axis=1),
             "target_mask": rows_spec((rows, length - 1), jnp.int32, mesh),
             "pixel_values": None, "vision": None}
    if num_patches:
        batch["pixel_values"], batch["vision"] = image_specs(config, num_patches, mesh)
    for key, (shape, dtype) in (extra or {}).items():
        batch[key] = rows_spec(shape, dtype, mesh)
    return batch


def run_image_processor(model_block, config: Qwen3VLConfig, max_side: int | None) -> ImageProcessor:
    """The image processor a run uses: its checkpoint's, the released one's for a preset, else the tiny
    build's (max_pixels from the config)."""
    if model_block.checkpoint:
        return ImageProcessor.from_pretrained(model_block.checkpoint, max_side=max_side)
    if model_block.preset:  # a released model: Qwen3-VL's own preprocessor settings
        return ImageProcessor(max_side=max_side)
    v = config.vision
    kwargs = {"max_pixels": int(model_block.max_pixels)} if model_block.max_pixels else {}
    factor = v.patch_size * v.spatial_merge_size
    return ImageProcessor(patch_size=v.patch_size, temporal_patch_size=v.temporal_patch_size,
                          merge_size=v.spatial_merge_size, min_pixels=min(factor * factor * 4, QWEN3_VL_MIN_PIXELS),
                          max_side=max_side, **kwargs)


def binned_model_config(config: Qwen3VLConfig, model_block, max_side: int | None) -> Qwen3VLConfig:
    """`config` attending in the vision bins a run gives it (`TrainingRun.load`): the patches of the
    largest image the run's processor emits."""
    largest = run_image_processor(model_block, config, max_side).max_image_patches()
    return dataclasses.replace(config, vision_bin=largest)


def run_model_config(model_block, **runtime) -> Qwen3VLConfig:
    """The architecture a run loads, without weights: the checkpoint's config.json if there is one, else
    `model.preset` (e.g. "qwen3vl_8b"), else the tiny model the run would build. `runtime` overrides the
    block's dtype / param_dtype / scan_layers / remat."""
    opts = runtime_options(model_block)
    opts = dict(dtype=opts["dtype"].name, param_dtype=opts["param_dtype"].name, scan_layers=opts["scan_layers"],
                remat=opts["remat"])
    opts.update(runtime)
    if model_block.checkpoint:
        return Qwen3VLConfig.from_hf(model_block.checkpoint, **opts)
    if model_block.preset:
        return getattr(Qwen3VLConfig, model_block.preset)(**opts)
    from policy.tiny_checkpoint import tiny_config

    text = model_block.text  # None: Qwen3VLConfig.tiny()'s decoder
    return tiny_config(int(model_block.vocab_size), None if text is None else text.to_dict(), **opts)


def bucket(n: int, buckets: Sequence[int] | None, what: str) -> int:
    """`pick_bucket` with the program named in the error a run would hit."""
    if not buckets:
        return n
    try:
        return pick_bucket(n, buckets)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from e


# ---------------------------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Program:
    """One jitted function with the abstract arguments the run calls it with."""

    name: str
    fn: Any  # a jax.jit-wrapped callable (has .lower)
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    note: str = ""  # the shapes, in words
    outside: dict = dataclasses.field(default_factory=dict)  # run state live beside it: name -> bytes per chip
    calls: float = 1.0  # calls per training step
    loop_trips: tuple = ()  # worst-case trips of its data-dependent loops, in order (policy.hlo_cost)
    ideal: Work = Work()  # the least work per chip per call (policy.step_time)
    mesh: Mesh | None = None  # the mesh it runs under (the sampler's: policy.sharding.sampling_mesh); None: the run's

    def lower(self):
        return self.fn.lower(*self.args, **self.kwargs)


@dataclasses.dataclass
class Failed:
    """A program the run would compile but that cannot even be built or lowered (e.g. no bucket fits)."""

    name: str
    error: str
    note: str = ""


@dataclasses.dataclass
class ProgramReport:
    name: str
    note: str = ""
    argument_bytes: int = 0
    output_bytes: int = 0
    alias_bytes: int = 0
    temp_bytes: int = 0
    code_bytes: int = 0
    flops: float = 0.0  # per chip per call, loops counted, Pallas kernels included (policy.hlo_cost)
    bytes_accessed: float = 0.0  # HBM bytes per chip per call, likewise
    error: str | None = None
    resident_bytes: int = 0  # run state live outside the program (Program.outside)
    calls: float = 1.0
    ideal: Work = Work()

    @property
    def peak_bytes(self) -> int:
        """Per chip: live arguments, outputs not aliased to (donated) arguments, temporaries, code."""
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes + self.code_bytes

    @property
    def total_bytes(self) -> int:
        """The program's peak plus the run's state that stays live beside it: what the chip must hold."""
        return self.peak_bytes + self.resident_bytes

    @property
    def work(self) -> Work:
        return Work(self.flops, self.bytes_accessed)


def sampler_programs(prefix: str, model, mesh: Mesh, *, batch: int, prompt_len: int, num_patches: int | None,
                     num_samples: int, max_new: int, params: SamplingParams, stop_ids: Sequence[int],
                     pad_id: int, decode_buckets: Sequence[int] = DEFAULT_DECODE_BUCKETS, calls: float = 1.0,
                     outside: dict | None = None, weights: str = "") -> list[Program]:
    """The `policy.Sampler`'s three jitted programs (reshard into the sampling layout, prefill, decode
    loop) at these shapes, each run `calls` times a step beside the state `outside`, in which `weights`
    names the model's own (training-layout) weights: the reshard's argument.

    `model` may be abstract. Its state is laid out as `Sampler.sampling_state` lays it out (compute
    dtype, SAMPLING_RULES on `sampling_mesh(mesh, kv heads)`, the mesh prefill and decode run under);
    prompts are padded to a multiple of its batch shards as `Sampler` pads them, and the decode program
    takes the prefill's outputs on the shardings the prefill leaves them in.
    Decode is costed at its worst case: every row runs to `max_new` tokens.
    """
    text_params, vision_params = matmul_params(model)
    chips, config = mesh.size, model.config
    phases = _phases(max_new, decode_buckets)
    common = dict(calls=calls, outside=dict(outside or {}))
    graphdef, state = nnx.split(model)
    dtype = model.config.compute_dtype
    training_mesh, mesh = mesh, sampling_mesh(mesh, config.text.num_key_value_heads)
    layout = "x".join(str(n) for n in mesh.devices.shape)
    reshard = Program(f"{prefix} reshard", sampling_reshard(state, mesh), (abstract_state(state, training_mesh), dtype),
                      note=f"weights into the sampling layout (mesh {layout}), once per call", calls=calls,
                      outside={k: v for k, v in (outside or {}).items() if k != weights})
    common["mesh"] = mesh
    shardings = state_shardings(state, mesh, SAMPLING_RULES)
    state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(
        x.shape, dtype if jnp.issubdtype(x.dtype, jnp.floating) else x.dtype, sharding=s), state, shardings)
    shards = batch_shards(mesh)
    padded = -(-batch // shards) * shards
    def rows(shape, dtype, axis=0):
        return rows_spec(shape, dtype, mesh, axis)

    pv = meta = None
    if num_patches:
        pv, meta = image_specs(model.config, num_patches, mesh)
    args = (graphdef, state, rows((padded, prompt_len), jnp.int32), rows((3, padded, prompt_len), jnp.int32, 1),
            rows((padded, prompt_len), jnp.int32), rows((padded, 1), jnp.int32), pv, meta,
            rows((padded,), jnp.bool_), rows((padded,), jnp.int32))
    prefill = Program(f"{prefix} prefill", _prefill, args, dict(num_prompts=batch),
                      note=f"{batch} prompts (padded to {padded}) x {prompt_len} tokens, {num_patches or 0} patches",
                      ideal=forward_work(text_params, vision_params, batch * prompt_len, num_patches or 0, chips),
                      **common)
    with jax.set_mesh(mesh):
        shapes = jax.eval_shape(functools.partial(_prefill, num_prompts=batch), *args)
    def spec(x, names):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=named_sharding(names, x.shape, mesh))

    def kv_names(x):
        return ("layers",) * (x.ndim - 4) + ("batch", "act_kv_heads", "cache_length", "head_dim")

    cache = KVCache(*(jax.tree.map(lambda x: spec(x, kv_names(x)), kv) for kv in (shapes.cache.k, shapes.cache.v)),
                    spec(shapes.cache.valid, ("batch", "cache_length")))
    filled = shapes.replace(cache=cache, logits=spec(shapes.logits, ("batch", None)),
                            **{name: spec(getattr(shapes, name),
                                          ("batch",) + (None,) * (getattr(shapes, name).ndim - 1))
                               for name in ("next_position", "prompt_ids", "active", "number")})
    key = jax.eval_shape(lambda: jax.random.key(0))
    decode = Program(
        f"{prefix} decode", _decode,
        (graphdef, state, filled, replicated_spec(key.shape, key.dtype, mesh)),
        dict(num_samples=num_samples, max_new=max_new, params=params, stop_ids=tuple(stop_ids), pad_id=pad_id,
             phases=phases),
        note=f"{batch} prompts x {num_samples} samples, cache {prompt_len}+{max_new}, mesh {layout}",
        loop_trips=_phase_steps(max_new, phases),
        ideal=decode_work(text_params * jnp.dtype(config.compute_dtype).itemsize, kv_bytes_per_token(config),
                          batch, prompt_len, batch * num_samples, max_new, text_params, chips),
        **common)
    return [reshard, prefill, decode]


def matmul_params(model) -> tuple[int, int]:
    """(text, vision) parameters a token or a patch multiplies: the input embedding table is a lookup,
    not a product (unless tied to the LM head)."""
    def size(tree):
        return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))

    vision = size(nnx.state(model.visual, nnx.Param))
    t = model.config.text
    embed = 0 if model.config.tie_word_embeddings else t.vocab_size * t.hidden_size
    return size(nnx.state(model, nnx.Param)) - vision - embed, vision


def kv_bytes_per_token(config: Qwen3VLConfig) -> int:
    """Keys and values of one token over every layer, in the compute dtype."""
    t = config.text
    return 2 * t.num_hidden_layers * t.num_key_value_heads * t.head_dim * jnp.dtype(config.compute_dtype).itemsize


def per_chip_bytes(tree) -> int:
    """Bytes one chip holds of a tree of (abstract) arrays with NamedShardings (the largest shard)."""
    total = 0
    for x in jax.tree.leaves(tree):
        shape = x.sharding.shard_shape(x.shape) if getattr(x, "sharding", None) is not None else x.shape
        total += math.prod(shape) * jnp.dtype(x.dtype).itemsize
    return total


def abstract_state(state, mesh: Mesh):
    """ShapeDtypeStructs on each variable's NamedSharding (from its logical axes)."""
    shardings = state_shardings(state, mesh)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)


def vision_program(config: Qwen3VLConfig, mesh: Mesh, num_patches: int) -> Program:
    """The vision tower alone (what prefill and the update step run first) at `num_patches` patches."""
    model = abstract_model(config)
    graphdef, state = nnx.split(model)
    state = abstract_state(state, mesh)
    pv, meta = image_specs(config, num_patches, mesh)

    @jax.jit
    def encode(state, pv, meta):
        return nnx.merge(graphdef, state).encode_images(pv, meta)

    return Program(f"vision @{num_patches} patches", encode, (state, pv, meta), note=f"{num_patches} patches")


def compile_program(program: Program | Failed, mesh: Mesh, dump_dir: str | None = None) -> ProgramReport:
    """Lower and compile one program; a build, lowering or compile error becomes the report's `error`.
    With `dump_dir`, the optimized HLO goes to `dump_dir/<name>.hlo` (what `policy.hlo_cost` reads)."""
    if isinstance(program, Failed):
        return ProgramReport(program.name, program.note, error=program.error)
    try:
        with jax.set_mesh(program.mesh or mesh):
            compiled = program.lower().compile()
        text = compiled.as_text()
        if dump_dir:
            os.makedirs(dump_dir, exist_ok=True)
            with open(os.path.join(dump_dir, re.sub(r"[^\w.-]+", "_", program.name) + ".hlo"), "w") as f:
                f.write(text)
        cost = hlo_cost.program_cost(text, program.loop_trips)
    except Exception as e:
        return ProgramReport(program.name, program.note, error=f"{type(e).__name__}: {_first_line(e)}")
    memory = compiled.memory_analysis()
    return ProgramReport(
        program.name, program.note, argument_bytes=int(memory.argument_size_in_bytes),
        output_bytes=int(memory.output_size_in_bytes), alias_bytes=int(memory.alias_size_in_bytes),
        temp_bytes=int(memory.temp_size_in_bytes), code_bytes=int(memory.generated_code_size_in_bytes),
        flops=cost.flops, bytes_accessed=cost.bytes, resident_bytes=sum(program.outside.values()),
        calls=program.calls, ideal=program.ideal)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    for line in text.splitlines():
        if "memory" in line.lower() or "exceed" in line.lower():
            return line.strip()[:400]
    return (text.splitlines() or [""])[0][:400]


def fits(report: ProgramReport, hbm_bytes: int, headroom: float) -> bool:
    """Compiled, and its peak plus the state live beside it leaves `headroom` of HBM free."""
    return report.error is None and report.total_bytes <= (1.0 - headroom) * hbm_bytes


def report_header(topo: Topology, headroom: float) -> list[str]:
    chip = topo.chip
    grid = ("" if topo.slices == 1 else f"{topo.slices} x ") + "x".join(map(str, topo.shape))
    return [f"{topo.name}: {topo.chips} chips ({grid}), {topo.hosts} hosts, "
            f"{topo.hbm_bytes / GiB:.0f} GiB HBM per chip, {headroom:.0%} headroom; {chip.source}",
            "GiB per chip (resident: the run's state live beside the program; total = peak + resident); "
            "TFLOP and GB per chip per call; seconds per step = calls x roofline:",
            f"{'program':<22} {'args':>7} {'temp':>7} {'output':>7} {'peak':>7} {'resid.':>7} {'total':>7} "
            f"{'TFLOP':>9} {'GB':>9} {'calls':>6} {'s/step':>8} {'ideal':>8}  fits"]


def report_line(r: ProgramReport, topo: Topology, headroom: float) -> str:
    if r.error is not None:
        return f"{r.name:<22} FAILED: {r.error}  [{r.note}]"
    def g(b):  # bytes as GiB in a column
        return f"{b / GiB:7.2f}"

    chip = topo.chip
    return (f"{r.name:<22} {g(r.argument_bytes)} {g(r.temp_bytes)} {g(r.output_bytes)} {g(r.peak_bytes)} "
            f"{g(r.resident_bytes)} {g(r.total_bytes)} {r.flops / 1e12:9.2f} {r.bytes_accessed / 1e9:9.2f} "
            f"{r.calls:6g} {r.calls * r.work.seconds(chip):8.2f} {r.calls * r.ideal.seconds(chip):8.2f}  "
            f"{'yes' if fits(r, topo.hbm_bytes, headroom) else 'NO '}  [{r.note}]")


def summary_line(reports: Sequence[ProgramReport], topo: Topology, headroom: float) -> str:
    """`fits N/M programs; peak X GiB of Y GiB per chip; step >= S s (ideal I s, R x)`: peak over the
    programs that compiled (with the state live beside each), step over every compiled program."""
    ok = sum(fits(r, topo.hbm_bytes, headroom) for r in reports)
    compiled = [r for r in reports if r.error is None]
    peak = max((r.total_bytes for r in compiled), default=0)
    estimate = estimate_step([Phase(r.name, r.work, r.ideal, r.calls) for r in compiled], topo.chip)
    return step_line(ok, len(reports), peak, topo.chip, estimate)
