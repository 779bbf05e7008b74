"""Model throughput: our jitted prefill + KV-cache decode against transformers (PyTorch CPU) on the same
random ~100M-parameter Qwen3-VL (full 151,936-token vocabulary), the decode step's memory traffic
over the ideal, plus the 8B training memory plan.

    python bench/model_bench.py [--batch 8] [--new 64] [--repeats 2] [--json PATH]

Both sides load the same weights (transformers builds and `save_pretrained`s them; we
`load_pretrained`), see the same left-padded batch (every prompt holds one image) and generate
greedily with no stop token. Timing for each side: prefill = one `generate` with 1 new token;
generation = (time for `--new` tokens - prefill time) over (new - 1) tokens per row. Machines are
noisy: compare the ratios printed on the same run. The weights-read limit is the decode step time
if every step only streamed the parameters once from memory (parameter bytes / bandwidth, bandwidth
measured here with a large numpy copy).

Decode traffic: XLA's cost analysis ("bytes accessed") of the compiled decode step (the one the
sampler's loop runs), over the ideal = the weights a step must read (decoder layers and the LM-head
table) + the live KV cache, each read once. On the CPU bench config: 64 rows, a 2,048-slot cache
(1,024 prompt + 1,024 generated slots, every slot live). Where libtpu is installed, the same for the
8B model in bf16 at the 8B GRPO run's mesh and shapes: a deviceless v5p-64 (32 chips), 32 prompts x 8
samples, 4,096 prompt slots and the sampler's last 4,096-slot generated cache at the last decode step
(4,095 slots live), per chip, on the mesh the sampler derives from the run's all-fsdp training mesh
(`policy.sharding.sampling_mesh`: tensor over the 8 KV heads, rows over 4) beside the training mesh
itself (no tensor axis: every chip reads the whole model), compiled with memory-space assignment off
so that the count is HBM traffic (with it on, XLA also counts the VMEM side of every weight prefetch).
Layers are unscanned there: the cost analysis counts a while-loop body once, so a scanned model would
undercount them. On TPU decode attention is the flash-decoding kernel (`policy.decode_attention`),
counted by its cost estimate: every slot of the cache it is given (it fetches only live blocks).
The host's last-level cache size is printed; where the whole model fits in it, the DRAM weights-read
limit is no limit and is not reported.

The memory plan is shape-only (`jax.eval_shape` model + the sharding rules on an abstract
64-chip fsdp mesh): bytes per device of parameters, AdamW's two fp32 moments and a frozen reference
copy for `Qwen3VLConfig.qwen3vl_8b()`; no memory is allocated.
"""
from __future__ import annotations

import glob
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from policy import cli
from policy.config import Qwen3VLConfig, TextConfig, VisionConfig
from policy.hf_io import load_pretrained
from policy.model import abstract_model
from policy.sampler import DEFAULT_DECODE_BUCKETS, Sampler, SamplingParams, _phases
from policy.sharding import MESH_AXES, SAMPLING_RULES, logical_to_spec, sampling_mesh, state_shardings
from policy.text import DecodeCache, KVCache, kv_zeros

IMG_TOKEN, VSTART, VEND = 151655, 151652, 151653


def bench_config() -> Qwen3VLConfig:
    """~97M parameters: tied 151,936 x 512 embedding (78M) + 6 decoder layers + a 2-block ViT."""
    text = TextConfig(vocab_size=151936, hidden_size=512, intermediate_size=1536, num_hidden_layers=6,
                      num_attention_heads=8, num_key_value_heads=4, head_dim=64, mrope_section=(12, 10, 10))
    vision = VisionConfig(depth=2, hidden_size=256, intermediate_size=512, num_heads=4, patch_size=16,
                          out_hidden_size=512, num_position_embeddings=256, deepstack_visual_indexes=(1,))
    return Qwen3VLConfig(text=text, vision=vision, tie_word_embeddings=True, pad_token_id=151643)


def make_batch(cfg: Qwen3VLConfig, batch: int, seed: int = 0):
    """Left-padded prompts: text, <vision_start>, 64 image tokens (grid 1x16x16), <vision_end>, text."""
    rng = np.random.default_rng(seed)
    grid = np.array([[1, 16, 16]] * batch, np.int64)
    n_img = 16 * 16 // 4
    rows = []
    for _ in range(batch):
        a, b = rng.integers(5, 40), rng.integers(10, 60)
        rows.append(list(rng.integers(0, 150000, a)) + [VSTART] + [IMG_TOKEN] * n_img + [VEND]
                    + list(rng.integers(0, 150000, b)))
    T = max(len(r) for r in rows)
    ids = np.full((batch, T), cfg.pad_token_id, np.int64)
    mask = np.zeros((batch, T), np.int64)
    for i, r in enumerate(rows):
        ids[i, T - len(r):], mask[i, T - len(r):] = r, 1
    pv = rng.standard_normal((int(np.prod(grid, 1).sum()), cfg.vision.patch_dim)).astype(np.float32)
    return ids, mask, pv, grid


def best_time(fn, repeats):
    """(best wall time of `repeats` calls, result of the last call)."""
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def memory_bandwidth(nbytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """Bytes/s of a large numpy copy (read + write counted)."""
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    t, _ = best_time(lambda: np.copyto(dst, src), repeats)
    return 2 * nbytes / t


def run_ours(path, ids, mask, pv, grid, new, repeats):
    _, model = load_pretrained(path)
    sampler = Sampler(model, pad_id=int(model.config.pad_token_id), stop_ids=(), prompt_buckets=(ids.shape[1],),
                      patch_buckets=(pv.shape[0],))
    greedy = SamplingParams(temperature=0.0)

    def gen(n):
        return sampler.generate(ids, mask, pv, grid, max_new_tokens=n, params=greedy).tokens  # numpy: synced

    gen(1), gen(new)  # compile
    t_new, tokens = best_time(lambda: gen(new), repeats)
    return best_time(lambda: gen(1), repeats)[0], t_new, tokens


def run_hf(hf, ids, mask, pv, grid, new, repeats):
    import torch
    from transformers import GenerationConfig

    kw = dict(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask),
              pixel_values=torch.as_tensor(pv), image_grid_thw=torch.as_tensor(grid),
              mm_token_type_ids=torch.as_tensor((ids == IMG_TOKEN).astype(np.int64)))

    def gen(n):
        gc = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                              pad_token_id=int(hf.config.text_config.pad_token_id or 0))
        with torch.no_grad():
            return hf.generate(**kw, generation_config=gc)[:, ids.shape[1]:].numpy()

    gen(2)  # warm up
    t_new, tokens = best_time(lambda: gen(new), repeats)
    return best_time(lambda: gen(1), repeats)[0], t_new, tokens


def sharded_elements(cfg: Qwen3VLConfig, n_devices: int = 64) -> tuple[float, float, float]:
    """(total, per-device, replicated) parameter elements on an fsdp mesh, from shapes only."""
    mesh = jax.sharding.AbstractMesh((1, n_devices, 1), MESH_AXES)
    state = nnx.state(abstract_model(cfg), nnx.Param)
    total = per_dev = replicated = 0
    for _, v in nnx.to_flat_state(state):
        shape = tuple(v.shape)
        names = v.get_metadata().get("logical_axes") or (None,) * len(shape)
        spec = logical_to_spec(names, shape, mesh)
        split = 1
        for axes in spec:
            for a in ((axes,) if isinstance(axes, str) else (axes or ())):
                split *= mesh.shape[a]
        n = math.prod(shape)
        total += n
        per_dev += n / split
        replicated += n if split == 1 else 0
    return total, per_dev, replicated


# ---------------------------------------------------------------------------------------------
# Decode step memory traffic (XLA cost analysis) over the ideal
# ---------------------------------------------------------------------------------------------
def decode_weight_elements(cfg: Qwen3VLConfig) -> int:
    """Parameters a decode step reads: decoder layers, final norm and the table the logits use."""
    t = cfg.text
    state = nnx.state(abstract_model(cfg).text, nnx.Param)
    n = sum(math.prod(v.shape) for path, v in nnx.to_flat_state(state) if path[0] != "embed")
    return n + t.vocab_size * t.hidden_size  # the LM head (or the tied embedding table)


def decode_step_cost(cfg: Qwen3VLConfig, prompts: int, samples: int, prompt_len: int, gen_len: int,
                     mesh: Mesh | None = None, tensor: int = 1, step: int | None = None) -> dict:
    """Bytes accessed per device by the compiled decode step writing generated slot `step` (default: the
    cache's last, gen_len - 1) of a `gen_len`-slot cache, and the ideal (slots 0..step live)."""
    step = gen_len - 1 if step is None else step
    model = abstract_model(cfg)
    graphdef, state = nnx.split(model)
    dtype = cfg.compute_dtype
    state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, dtype if jnp.issubdtype(x.dtype, jnp.floating)
                                                        else x.dtype), state)
    rows = prompts * samples
    cache = jax.eval_shape(lambda: DecodeCache(KVCache.init(cfg, prompts, prompt_len), kv_zeros(cfg, rows, gen_len),
                                               kv_zeros(cfg, rows, gen_len)))
    args = (state, cache, jax.ShapeDtypeStruct((rows, 1), jnp.int32), jax.ShapeDtypeStruct((3, rows, 1), jnp.int32))
    shardings = None
    if mesh is not None:
        kv_names = ("batch", "act_kv_heads", "cache_length", "head_dim")

        def spec(x, names):
            return NamedSharding(mesh, logical_to_spec(names, x.shape, mesh))

        cache_sh = jax.tree.map(lambda x: spec(x, kv_names if x.ndim == 4 else ("batch", "cache_length")), cache)
        shardings = (state_shardings(state, mesh, SAMPLING_RULES), cache_sh, spec(args[2], ("batch", None)),
                     spec(args[3], (None, "batch", None)))

    def decode(state, cache, ids, positions):
        return nnx.merge(graphdef, state).decode(ids, positions, cache, step)

    jitted = jax.jit(decode, donate_argnums=(1,), in_shardings=shardings)
    with jax.set_mesh(mesh) if mesh is not None else _null():
        compiled = jitted.lower(*args).compile()
    costs = compiled.cost_analysis()
    costs = costs[0] if isinstance(costs, (list, tuple)) else costs
    t = cfg.text
    width = jnp.dtype(dtype).itemsize
    kv_per_slot = 2 * t.num_hidden_layers * t.num_key_value_heads * t.head_dim * width
    batch_split = 1 if mesh is None else mesh.size // tensor
    ideal = (decode_weight_elements(cfg) * width / tensor
             + kv_per_slot * (prompts * prompt_len + rows * (step + 1)) / (batch_split * tensor))
    return {"bytes": float(costs["bytes accessed"]), "ideal": ideal, "ratio": float(costs["bytes accessed"]) / ideal,
            "temp": compiled.memory_analysis().temp_size_in_bytes}


def _null():
    import contextlib

    return contextlib.nullcontext()


def print_cost(label: str, c: dict) -> None:
    print(f"  {label}: {c['bytes'] / 1e9:7.3f} GB accessed, ideal {c['ideal'] / 1e9:7.3f} GB "
          f"(weights + live KV once): x{c['ratio']:.2f}; temporaries {c['temp'] / 1e6:.1f} MB")


def tpu_8b_decode_cost(prompts: int = 32, samples: int = 8, prompt_len: int = 4096, max_new: int = 4096,
                       topology: str = "v5p-64", regroup: bool = True) -> dict | None:
    """The 8B decode step at the GRPO run's shapes (configs/qwen3vl_8b_grpo.py: 32 prompts x 8 samples,
    4,096 prompt slots, the generated cache of the sampler's last phase (`max_new` - 1 slots rounded up to
    whole kernel blocks: 4,096), its last step (4,095 slots live)) on a deviceless `topology`, laid out as the sampler
    lays it out from the run's all-fsdp training mesh: on `sampling_mesh` (regroup=False: on the training
    mesh itself, the layout before the sampling mesh). None without libtpu."""
    try:
        import libtpu  # noqa: F401
    except ImportError:
        return None
    # Memory-space assignment off: every operand is then read from HBM, so XLA's count is HBM traffic.
    # With it on, the count adds the VMEM side of each weight prefetch (copy-start/done) on top of the
    # HBM read: x1.96 of the weights on a KV-free step (x1.93 here), x1.09 with it off.
    os.environ.setdefault("LIBTPU_INIT_ARGS", "--xla_msa_enable=false")
    from policy import aot

    cfg = Qwen3VLConfig.qwen3vl_8b(dtype="bfloat16", param_dtype="bfloat16")
    mesh = aot.topology_mesh(aot.topology(topology), ())
    if regroup:
        mesh = sampling_mesh(mesh, cfg.text.num_key_value_heads)
    gen_len = _phases(max_new, DEFAULT_DECODE_BUCKETS)[-1]
    cost = decode_step_cost(cfg, prompts, samples, prompt_len, gen_len, mesh=mesh, tensor=mesh.shape["tensor"],
                            step=max_new - 2)
    return dict(cost, mesh="x".join(str(n) for n in mesh.devices.shape))


def tpu_8b_generation_cost(prompts: int = 32, samples: int = 8, prompt_len: int = 4096, max_new: int = 4096,
                           topology: str = "v5p-64") -> dict | None:
    """The sampler's whole decode program (`policy.aot.sampler_programs`: `policy.sampler._decode`, every
    decode phase, scanned layers as the 8B GRPO config runs them) at the run's shapes on the sampling mesh,
    memory-space assignment off: HBM bytes per chip per generated token averaged over a generation in
    which every row runs to `max_new` (`policy.hlo_cost`, each phase's loop counted by its trips), beside
    the layout's ideal averaged the same way (the weights a chip holds + each token's live KV, read once).
    None without libtpu."""
    try:
        import libtpu  # noqa: F401
    except ImportError:
        return None
    os.environ.setdefault("LIBTPU_INIT_ARGS", "--xla_msa_enable=false")
    from policy import aot

    cfg = Qwen3VLConfig.qwen3vl_8b(dtype="bfloat16", param_dtype="bfloat16", scan_layers=True)
    training = aot.topology_mesh(aot.topology(topology), ())
    params = SamplingParams(temperature=1.0, suppress_ids=(cfg.image_token_id, cfg.vision_start_token_id))
    decode = aot.sampler_programs("policy", abstract_model(cfg), training, batch=prompts, prompt_len=prompt_len,
                                  num_patches=None, num_samples=samples, max_new=max_new, params=params,
                                  stop_ids=(), pad_id=0)[-1]
    report = aot.compile_program(decode, training)
    if report.error:
        raise RuntimeError(f"{decode.name}: {report.error}")
    mesh, rows = decode.mesh, prompts * samples
    live_slots = prompts * prompt_len + rows * (max_new - 1) / 2  # the mean over the tokens of a generation
    ideal = (decode_weight_elements(cfg) * 2 / mesh.shape["tensor"]
             + aot.kv_bytes_per_token(cfg) * live_slots / mesh.size)
    per_token = report.bytes_accessed / max_new
    return {"bytes": per_token, "ideal": ideal, "ratio": per_token / ideal, "temp": report.temp_bytes,
            "mesh": "x".join(str(n) for n in mesh.devices.shape)}


def last_level_cache_bytes() -> int | None:
    """Size of this host's last-level CPU cache (Linux sysfs), or None where unknown."""
    best = None
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            level = int(open(os.path.join(d, "level")).read())
            size = open(os.path.join(d, "size")).read().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1], 1)
        nbytes = int(size.rstrip("KMG")) * scale
        if best is None or level > best[0]:
            best = (level, nbytes)
    return None if best is None else best[1]


def decode_traffic(figures: dict) -> None:
    cfg = bench_config()
    print("\ndecode step memory traffic (XLA cost analysis of the compiled step):")
    c = decode_step_cost(cfg, prompts=64, samples=1, prompt_len=1024, gen_len=1024)
    print_cost("bench model, 64 rows, 2,048-slot cache (fp32, CPU)", c)
    figures["decode_bytes_over_ideal"] = c["ratio"]
    shared = decode_step_cost(cfg, prompts=8, samples=8, prompt_len=1024, gen_len=1024)
    print_cost("bench model, 8 prompts x 8 samples, shared 1,024-slot prompt cache + 1,024 generated slots", shared)
    figures["decode_bytes_over_ideal_shared_prompt"] = shared["ratio"]
    tpu = tpu_8b_decode_cost()
    if tpu is None:
        print("  8B on v5p-64: libtpu not installed, skipped")
        return
    before = tpu_8b_decode_cost(regroup=False)
    run = "8B bf16, v5p-64 (32 chips), 32 prompts x 8 samples, 4,096 prompt + 4,095 generated slots (last step)"
    print_cost(f"{run}, training mesh {before['mesh']} (no tensor axis), per chip", before)
    print_cost(f"{run}, sampling mesh {tpu['mesh']}, per chip", tpu)
    print(f"  sampling mesh over training mesh: x{tpu['bytes'] / before['bytes']:.3f} bytes per chip per token")
    whole = tpu_8b_generation_cost()
    print_cost(f"the sampler's decode program, same shapes, mesh {whole['mesh']}, every row to 4,096 tokens: "
               "per chip per token, averaged over the generation (ideal: live KV)", whole)
    figures.update(decode_bytes_per_token_8b_v5p64_generation=whole["bytes"],
                   decode_bytes_over_ideal_8b_v5p64_generation=whole["ratio"])
    figures.update(decode_bytes_over_ideal_8b_v5p64=tpu["ratio"], decode_bytes_per_chip_8b_v5p64=tpu["bytes"],
                   decode_bytes_per_chip_8b_v5p64_training_mesh=before["bytes"])


def memory_plan(n_devices: int = 64):
    cfg = Qwen3VLConfig.qwen3vl_8b()
    total, per_dev, replicated = sharded_elements(cfg, n_devices)
    gib = 2**30
    print(f"\n8B memory plan (Qwen3VLConfig.qwen3vl_8b(), {n_devices}-chip fsdp mesh, shapes only):")
    print(f"  parameters: {total / 1e9:.3f} B; per device {per_dev / 1e6:.1f} M elements "
          f"(ideal {total / n_devices / 1e6:.1f} M; {replicated / 1e6:.2f} M replicated on every chip)")
    for label, p_bytes, ref_bytes in (("fp32 params, bf16 reference", 4, 2), ("fp32 params, fp32 reference", 4, 4),
                                      ("bf16 params, bf16 reference", 2, 2)):
        params, adam, ref = per_dev * p_bytes, per_dev * 8, per_dev * ref_bytes
        print(f"  {label:30s}: params {params / gib:6.3f} GiB + AdamW mu,nu (fp32) {adam / gib:6.3f} GiB"
              f" + reference {ref / gib:6.3f} GiB = {(params + adam + ref) / gib:6.3f} GiB per device")


FLAGS = flags.FlagValues()
flags.DEFINE_integer("batch", 8, "prompts", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("new", 64, "new tokens a prompt", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("repeats", 2, "timed repeats", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("skip_throughput", False, "only the memory and cost figures", flag_values=FLAGS)
flags.DEFINE_string("json", None, "write every figure to this JSON file", flag_values=FLAGS)


def main():
    args = cli.parse(FLAGS, None, __doc__)
    figures: dict = {}
    if not args.skip_throughput:
        throughput(args, figures)
    decode_traffic(figures)
    memory_plan()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


def throughput(args, figures: dict) -> None:
    import torch
    from transformers import Qwen3VLConfig as HFConfig
    from transformers import Qwen3VLForConditionalGeneration

    cfg = bench_config()
    torch.manual_seed(0)
    hf = Qwen3VLForConditionalGeneration(HFConfig(**cfg.to_hf())).float().eval()
    n_params = sum(p.numel() for p in hf.parameters())
    ids, mask, pv, grid = make_batch(cfg, args.batch)
    n_prompt = int(mask.sum())
    B, new = args.batch, args.new
    print(f"model: {n_params / 1e6:.1f} M parameters (float32), vocab {cfg.text.vocab_size}; batch {B} prompts "
          f"({n_prompt} real prompt tokens, padded length {ids.shape[1]}, one 16x16-patch image each), "
          f"{new} new tokens, greedy; jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours_p, ours_g, ours_tok = run_ours(d, ids, mask, pv, grid, new, args.repeats)
    hf_p, hf_g, hf_tok = run_hf(hf, ids, mask, pv, grid, new, args.repeats)
    bw = memory_bandwidth()
    weight_bytes = decode_weight_elements(cfg) * 4
    llc = last_level_cache_bytes()
    fits = llc is not None and weight_bytes <= llc
    step_limit = weight_bytes / bw
    rows = {}
    for name, tp, tg in (("ours (jax)", ours_p, ours_g), ("transformers", hf_p, hf_g)):
        dec = max(tg - tp, 1e-9)
        rows[name] = (n_prompt / tp, B * (new - 1) / dec, step_limit / (dec / (new - 1)))
        limit = "" if fits else f" | {rows[name][2] * 100:5.1f}% of the weights-read limit"
        print(f"{name:13s}: prefill {rows[name][0]:9.1f} tok/s ({tp * 1e3:7.1f} ms) | generation "
              f"{rows[name][1]:7.1f} tok/s ({dec / (new - 1) * 1e3:6.1f} ms/step){limit}")
    o, h = rows["ours (jax)"], rows["transformers"]
    print(f"ratio ours/transformers: prefill x{o[0] / h[0]:.2f}, generation x{o[1] / h[1]:.2f}")
    llc_text = "unknown" if llc is None else f"{llc / 2**20:.0f} MiB"
    print(f"last-level cache {llc_text}; decode weights {weight_bytes / 2**20:.0f} MiB")
    if fits:
        print("the whole decode weight set fits in the last-level cache: the DRAM weights-read limit is no limit here")
    else:
        print(f"memory bandwidth (numpy copy) {bw / 1e9:.1f} GB/s; weights-read limit {step_limit * 1e3:.1f} ms/step "
              f"= {B / step_limit:.0f} tok/s at batch {B}")
        figures["generation_weight_read_fraction"] = o[2]
    print(f"greedy tokens identical to transformers: {np.mean(ours_tok == hf_tok) * 100:.1f}% of positions")
    figures.update(generation_vs_transformers=o[1] / h[1], prefill_vs_transformers=o[0] / h[0],
                   last_level_cache_bytes=llc, load_average=os.getloadavg()[0],
                   greedy_token_agreement=float(np.mean(ours_tok == hf_tok)))


if __name__ == "__main__":
    main()
