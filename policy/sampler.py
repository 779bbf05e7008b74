"""`Sampler`: batched KV-cache generation for `Qwen3VL` (greedy / temperature, top-k, top-p, min-p,
repetition and presence penalties), G samples per prompt from one prefill of the prompt.

Why this shape:
  * Layout: `generate` first lays the weights out for sampling (`policy.sharding.SAMPLING_RULES`,
    cast to the compute dtype) on the sampling mesh (`policy.sharding.sampling_mesh`: the training
    mesh's devices regrouped with a tensor axis of the KV-head count): no weight dimension on the
    batch axes, so no decode step all-gathers weights, and each chip holds and reads 1/tensor of them;
    rows split over the batch axes, the KV cache over rows and KV heads. Prompts are padded to a
    multiple of the sampling mesh's batch shards so prefill and decode split the batch evenly.
  * Prefill runs once per prompt on a bucketed static shape (prompt length, patch count and,
    optionally, batch size padded to buckets) and keeps only the last real position's hidden state,
    so no [B, T, vocab] logits are ever built. Its keys/values become the prompt cache, one copy per
    prompt that its G samples all read (`policy.text.DecodeCache`).
  * Decoding writes step s of every row at generated slot s in place (one `dynamic_update_slice`
    per layer; the stacked cache of scanned layers is carried through the scan). Attention spans the
    prompt bucket plus the generated slots of the current decode bucket only: the loop runs in
    phases of growing generated-cache size (`decode_buckets`), each a `jax.lax.while_loop`, and the
    cache is padded once between phases. Every loop exits as soon as every row has stopped. On TPU the
    attention is a flash-decoding kernel (`policy.decode_attention`): scores stay on chip and blocks
    past the last generated slot are not read.
  * Each row's M-RoPE position is `n_real + rope_delta + s` (n_real = real prompt tokens, see
    `policy.rope_index`), so left- or right-padded prompts need no shared end index. A stopped row
    keeps feeding pad tokens whose outputs are discarded.
  * Top-k / top-p draw from a `jax.lax.top_k` candidate set with an exact fallback
    (`policy.sampling`): no full-vocabulary sort per step.

Log-probs: `SampleOutput.logprobs` is the raw model log-probability of each sampled token
(log_softmax of the float32 logits at temperature 1, before penalties and filters) -- the quantity a
teacher-forced `forward_logits` pass reproduces. `SampleOutput.sample_logprobs` is the exact
log-probability under the distribution the token was drawn from: `process_logits` (suppressed ids,
penalties, temperature, top-k, top-p, min-p) of the same logits; 0 for greedy. GRPO's behaviour
log-probs are these.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from functools import partial

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from policy.decode_attention import KV_BLOCK
from policy.host_batch import agreed_max, gather_patches, gather_rows, process_rows, put_patches, put_rows
from policy.image_processor import DEFAULT_PATCH_BUCKETS, pick_bucket
from policy.model import prepare_inputs
from policy.processor import DEFAULT_SEQ_BUCKETS
from policy.sampling import SamplingParams, sample_tokens
from policy.sharding import SAMPLING_RULES, batch_shards, constrain, data_sharding, sampling_mesh, state_shardings
from policy.text import DecodeCache, KVCache, kv_zeros
from policy.vision import VisionInputs, pack_pixels

__all__ = ["DEFAULT_DECODE_BUCKETS", "Prefill", "SampleOutput", "Sampler", "SamplingParams"]

# Generated-cache sizes the decode loop grows through (the last phase is exactly max_new_tokens - 1).
DEFAULT_DECODE_BUCKETS = (256, 512, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384)


@dataclasses.dataclass
class SampleOutput:
    """Numpy results; row i is sample i % G of prompt `prompt_index[i]` (= i // G)."""

    tokens: np.ndarray  # [B*G, max_new] int32, pad_id after the stop token
    logprobs: np.ndarray  # [B*G, max_new] float32 raw model log-prob (T=1, no filters); 0 after stop
    sample_logprobs: np.ndarray  # [B*G, max_new] float32 log-prob under the distribution sampled from; 0 after stop
    lengths: np.ndarray  # [B*G] int32 generated tokens, counting the stop token
    stopped: np.ndarray  # [B*G] bool: ended on a stop token (False: hit max_new_tokens)
    prompt_index: np.ndarray  # [B*G] int32
    steps: int = 0  # tokens the decode loop produced per row before every row had stopped (<= max_new)


@flax.struct.dataclass
class Prefill:
    """What decoding needs from one prefill of the bucket-padded prompts (Bb rows, T slots)."""

    logits: jax.Array  # [Bb, V] float32 at each prompt's last real token
    cache: KVCache  # the prompts' keys/values; valid = prompt attention mask
    next_position: jax.Array  # [Bb] int32 M-RoPE position of the first generated token
    prompt_ids: jax.Array  # [Bb, T] int32 (the repetition penalty reads them)
    active: jax.Array  # [Bb] bool: a real prompt, not batch padding
    number: jax.Array  # [Bb] int32 the prompt's place among every process's real prompts (seeds its samples)
    num_prompts: int = flax.struct.field(pytree_node=False, default=0)  # this process's real prompts


@flax.struct.dataclass
class DecodeState:
    """The decode loop's carry: the cache and everything recorded per row so far."""

    cache: DecodeCache | None
    step: jax.Array  # tokens sampled so far (scalar int32)
    last: jax.Array  # [N] last sampled token (pad for stopped rows)
    done: jax.Array  # [N] bool: stopped or padding
    stopped: jax.Array  # [N] bool: hit a stop token
    lengths: jax.Array  # [N] int32
    tokens: jax.Array  # [N, max_new] int32
    logprobs: jax.Array  # [N, max_new] float32
    sample_logprobs: jax.Array  # [N, max_new] float32
    seen: jax.Array | None  # [N, V] bool: prompt + generated tokens (repetition penalty)
    generated: jax.Array | None  # [N, V] bool: generated tokens (presence penalty)


# ---------------------------------------------------------------------------------------------
# Jitted prefill and decode loop (pure functions of the model state; graphdef is static)
# ---------------------------------------------------------------------------------------------
def _constrain_kv(kv):
    """Cache arrays [(layers,) batch, kv_heads, slots, head_dim] sharded over batch and kv heads."""
    names = ("batch", "act_kv_heads", "cache_length", "head_dim")
    return jax.tree.map(lambda x: constrain(x, ("layers",) * (x.ndim - 4) + names), kv)


@partial(jax.jit, static_argnums=(0,), static_argnames=("num_prompts",))
def _prefill(graphdef, state, ids, positions, mask, deltas, pixel_values, meta, active, number, *, num_prompts):
    model = nnx.merge(graphdef, state)
    B, T = ids.shape
    cache = KVCache.init(model.config, B, T)
    h, cache = model(ids, positions, mask, pixel_values, meta, cache=cache,
                     cache_index=jnp.zeros((B,), jnp.int32), return_hidden=True)
    cache = KVCache(_constrain_kv(cache.k), _constrain_kv(cache.v), constrain(cache.valid, ("batch", "cache_length")))
    last = T - 1 - jnp.argmax(mask[:, ::-1] > 0, axis=1)
    return Prefill(model.logits(h[jnp.arange(B), last]), cache, jnp.sum(mask, axis=1) + deltas[:, 0], ids, active,
                   number, num_prompts)


def _phases(max_new: int, buckets: Sequence[int]) -> tuple[int, ...]:
    """Generated-cache sizes of the decode phases: the buckets below max_new - 1, then max_new - 1 rounded
    up to whole blocks of the TPU decode kernel (`policy.decode_attention`; the extra slots stay masked)."""
    need = max_new - 1  # the last sampled token is never fed back
    if need <= 0:
        return ()
    return tuple(b for b in sorted(buckets) if b < need) + (-(-need // KV_BLOCK) * KV_BLOCK,)


def _phase_steps(max_new: int, phases: Sequence[int]) -> tuple[int, ...]:
    """Decode steps each phase's loop runs when no row stops early (the last phase stops at max_new - 1)."""
    need = max_new - 1
    return tuple(min(b, need) - min(a, need) for a, b in zip((0,) + tuple(phases), phases))


def _grow(kv, size: int):
    """Pad generated-cache arrays to `size` slots (once per phase)."""
    return jax.tree.map(lambda x: jnp.pad(x, ((0, 0),) * (x.ndim - 2) + ((0, size - x.shape[-2]), (0, 0))), kv)


@partial(jax.jit, static_argnums=(0,),
         static_argnames=("num_samples", "max_new", "params", "stop_ids", "pad_id", "phases"))
def _decode(graphdef, state, prefill: Prefill, key, *, num_samples, max_new, params, stop_ids, pad_id, phases):
    model = nnx.merge(graphdef, state)
    G = num_samples
    B = prefill.prompt_ids.shape[0]
    N = B * G
    V = prefill.logits.shape[-1]
    def rep(x):  # row b*G + g is sample g of prompt b
        return jnp.repeat(x, G, axis=0)

    stops = jnp.asarray(stop_ids if stop_ids else (-1,), jnp.int32)
    rows = jnp.arange(N)
    next_position = rep(prefill.next_position)
    # sample g of prompt p draws from key(p * G + g): the same samples however prompts are padded or split
    row_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, rep(prefill.number) * G + rows % G)
    seen = None
    if params.uses_seen:
        prompt_mask = prefill.cache.valid
        seen = rep(jnp.zeros((B, V), bool).at[jnp.arange(B)[:, None], prefill.prompt_ids].max(prompt_mask))
    first = phases[0] if phases else 0
    cache = DecodeCache(prefill.cache, _constrain_kv(kv_zeros(model.config, N, first)),
                        _constrain_kv(kv_zeros(model.config, N, first)))
    carry = DecodeState(
        cache=cache, step=jnp.int32(0), last=jnp.full((N,), pad_id, jnp.int32), done=~rep(prefill.active),
        stopped=jnp.zeros((N,), bool), lengths=jnp.zeros((N,), jnp.int32),
        tokens=jnp.full((N, max_new), pad_id, jnp.int32), logprobs=jnp.zeros((N, max_new), jnp.float32),
        sample_logprobs=jnp.zeros((N, max_new), jnp.float32), seen=seen,
        generated=jnp.zeros((N, V), bool) if params.uses_generated else None)

    def choose(c: DecodeState, logits) -> DecodeState:
        """Sample token `c.step` of every row from logits [N, V] and record it for live rows."""
        s = c.step
        keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, s)
        tok, lp, slp = sample_tokens(keys, logits, params, c.seen, c.generated)
        live = ~c.done
        tok = jnp.where(live, tok, pad_id)
        hit = live & jnp.any(tok[:, None] == stops[None, :], axis=-1)

        def put(buf, x):
            return jax.lax.dynamic_update_slice(buf, x[:, None], (0, s))

        def mark(flags):
            return None if flags is None else flags.at[rows, tok].max(live)

        return c.replace(step=s + 1, last=tok, done=c.done | hit, stopped=c.stopped | hit, lengths=c.lengths + live,
                         tokens=put(c.tokens, tok), logprobs=put(c.logprobs, jnp.where(live, lp, 0.0)),
                         sample_logprobs=put(c.sample_logprobs, jnp.where(live, slp, 0.0)),
                         seen=mark(c.seen), generated=mark(c.generated))

    def body(c: DecodeState) -> DecodeState:
        slot = c.step - 1  # feed the last sampled token at generated slot s - 1
        pos = jnp.broadcast_to((next_position + slot)[None, :, None], (3, N, 1))
        logits, cache = model.decode(c.last[:, None], pos, c.cache, slot)
        cache = DecodeCache(cache.prompt, _constrain_kv(cache.gen_k), _constrain_kv(cache.gen_v))
        return choose(c.replace(cache=cache), logits)

    carry = choose(carry, rep(prefill.logits))
    for size in phases:
        if size > carry.cache.gen_len:
            carry = carry.replace(cache=DecodeCache(carry.cache.prompt, _grow(carry.cache.gen_k, size),
                                                    _grow(carry.cache.gen_v, size)))
        carry = jax.lax.while_loop(lambda c, size=size: (c.step <= size) & (c.step < max_new) & ~jnp.all(c.done),
                                   body, carry)
    return carry.replace(cache=None)


def _cast_floating(tree, dtype):
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def sampling_reshard(state, mesh):
    """The jitted program `Sampler.sampling_state` runs: (state, dtype) -> floating leaves cast to
    `dtype` and, on a mesh (the sampling mesh), laid out by SAMPLING_RULES (`launch.aot` compiles the
    same one). The state may sit on another mesh of the same devices (the training mesh): jit takes
    input and output shardings on two meshes of one device set, so the move is one program. One program
    for the whole tree: a reshard per leaf would be dozens of independent collective programs, which
    XLA:CPU may run in a different order on each process (a multi-host deadlock)."""
    shardings = None if mesh is None else state_shardings(state, mesh, SAMPLING_RULES)
    return jax.jit(_cast_floating, static_argnums=1, out_shardings=shardings)


# ---------------------------------------------------------------------------------------------
# Host-side driver
# ---------------------------------------------------------------------------------------------
class Sampler:
    """Batched generation for a `Qwen3VL` (the policy or the reward model).

    prompt_buckets / patch_buckets / batch_buckets: static shapes the prompt length, pixel-patch
    count and prompt count are padded up to (None: exact sizes); decode_buckets: the generated-cache
    sizes the decode loop grows through. `mesh`: the model's (training) mesh; sampling runs on
    `sampling_mesh(mesh, kv heads)` (`self.sampling_mesh`; inputs sharded over `batch`, parameters
    resharded into the sampling layout on each call). On a mesh spanning several
    processes, every process calls `generate` in step with its own prompts (same count on each)
    and gets back its own rows; the global batch is the processes' prompts in process order. The
    model is re-split on every call, so in-place parameter updates (training) are picked up without
    recompiling.
    """

    def __init__(self, model, *, pad_id: int, stop_ids: Sequence[int] = (),
                 prompt_buckets: Sequence[int] | None = DEFAULT_SEQ_BUCKETS,
                 patch_buckets: Sequence[int] | None = DEFAULT_PATCH_BUCKETS,
                 batch_buckets: Sequence[int] | None = None, mesh=None,
                 decode_buckets: Sequence[int] = DEFAULT_DECODE_BUCKETS):
        self.model = model
        self.pad_id = int(pad_id)
        self.stop_ids = tuple(int(s) for s in stop_ids)
        self.prompt_buckets = prompt_buckets
        self.patch_buckets = patch_buckets
        self.batch_buckets = batch_buckets
        self.mesh = mesh
        self.sampling_mesh = None if mesh is None else sampling_mesh(mesh, model.config.text.num_key_value_heads)
        self.decode_buckets = tuple(int(b) for b in decode_buckets)

    def sampling_state(self) -> tuple[nnx.GraphDef, nnx.State]:
        """The model split for sampling: floating parameters cast to the compute dtype (the matmuls cast
        them anyway, so numerics are unchanged and each step reads half the bytes of fp32 masters)
        and, on a mesh, laid out by SAMPLING_RULES on the sampling mesh. One reshard per call: call it once
        per rollout."""
        graphdef, state = nnx.split(self.model)
        dtype = self.model.config.compute_dtype
        needs_cast = any(jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype for x in jax.tree.leaves(state))
        if not needs_cast and self.mesh is None:
            return graphdef, state
        return graphdef, sampling_reshard(state, self.sampling_mesh)(state, dtype)

    def _ctx(self):
        return jax.set_mesh(self.sampling_mesh) if self.mesh is not None else contextlib.nullcontext()

    def _put(self, x, batch_axis=0):
        """This process's rows, sharded over the sampling mesh's batch axes. With several processes a batch
        shard may span processes (a tensor group wider than a host), so the rows are all-gathered first
        and every process places the shards its devices hold."""
        if self.mesh is None:
            return jnp.asarray(x)
        if jax.process_count() == 1:
            return put_rows(x, self.sampling_mesh, batch_axis)
        rows = np.moveaxis(gather_rows(np.moveaxis(np.asarray(x), batch_axis, 0)), 0, batch_axis)
        sharding = data_sharding(self.sampling_mesh, rows.ndim, batch_axis, rows.shape)
        return jax.make_array_from_callback(rows.shape, sharding, lambda index: rows[index])

    def _pad_prompts(self, input_ids, attention_mask):
        ids = np.asarray(input_ids)
        ids = ids[None] if ids.ndim == 1 else ids
        mask = (np.ones(ids.shape, np.int32) if attention_mask is None
                else np.asarray(attention_mask, np.int32).reshape(ids.shape))
        B, T = ids.shape
        Tb = pick_bucket(T, self.prompt_buckets) if self.prompt_buckets else T
        Bb = pick_bucket(B, self.batch_buckets) if self.batch_buckets else B
        Tb, Bb = agreed_max(Tb, Bb)  # every process of a multi-host mesh pads to one shape
        if self.mesh is not None:  # split the batch evenly: every shard holds whole prompts
            shards = batch_shards(self.sampling_mesh)
            per_process = shards // math.gcd(shards, jax.process_count())
            Bb = -(-Bb // per_process) * per_process
        out_ids = np.full((Bb, Tb), self.pad_id, np.int64)
        out_mask = np.zeros((Bb, Tb), np.int32)
        out_ids[:B, Tb - T:] = ids  # extra padding goes on the left; real rows keep their layout
        out_mask[:B, Tb - T:] = mask
        return out_ids, out_mask, B

    def prefill(self, input_ids, attention_mask=None, pixel_values=None, image_grid_thw=None, *,
                sampling_state=None) -> Prefill:
        """Bucketed prefill of prompts (inputs as `generate`'s) under `sampling_state()` (or the given one)."""
        cfg = self.model.config
        if (pixel_values is None) != (image_grid_thw is None):
            raise ValueError("pixel_values and image_grid_thw must be given together")
        ids, mask, B = self._pad_prompts(input_ids, attention_mask)
        pv = meta = None
        num_patches = None
        if pixel_values is not None:
            pv = pack_pixels(pixel_values, image_grid_thw, cfg, patch_buckets=self.patch_buckets)
            num_patches = len(pv)
        inputs = prepare_inputs(cfg, ids, mask, image_grid_thw, num_patches)
        meta_np = inputs.vision
        graphdef, state = sampling_state or self.sampling_state()
        slots = np.arange(inputs.input_ids.shape[0])
        active = slots < B
        number = np.where(active, jax.process_index() * B + slots, 2**30 + slots).astype(np.int32)
        with self._ctx():
            if pv is not None and jax.process_count() > 1:  # every process's patches, in global order
                pv, meta_np = gather_patches(pv, meta_np)
            if pv is not None:  # split over the sampling mesh with their vision bins
                pv, meta = (put_patches(pv, self.sampling_mesh),
                            VisionInputs(*(put_patches(x, self.sampling_mesh) for x in meta_np)))
            return _prefill(graphdef, state, self._put(inputs.input_ids), self._put(inputs.positions, 1),
                            self._put(inputs.attention_mask), self._put(inputs.rope_deltas.astype(np.int32)), pv, meta,
                            self._put(active), self._put(number), num_prompts=B)

    def generate(self, input_ids, attention_mask=None, pixel_values=None, image_grid_thw=None, *,
                 max_new_tokens: int, num_samples: int = 1, rng=None, params: SamplingParams | None = None,
                 stop_ids: Sequence[int] | None = None) -> SampleOutput:
        """G = num_samples completions per prompt (row i <- prompt i // G), all sharing one prefill.

        input_ids/attention_mask [B, T] numpy (left padding expected, right padding works too);
        pixel_values [P, D] / image_grid_thw [n, 3] for the batch's images in order (already
        bucket-padded inputs from `Processor` are accepted). rng: a jax key or int seed (needed
        only for temperature > 0; same key -> same samples).
        """
        params = params or SamplingParams(temperature=0.0)
        if max_new_tokens < 1 or num_samples < 1:
            raise ValueError("max_new_tokens and num_samples must be >= 1")
        if rng is None:
            if not params.greedy:
                raise ValueError("sampling with temperature > 0 needs an rng key")
            rng = 0
        key = jax.random.key(rng) if isinstance(rng, (int, np.integer)) else rng
        stops = self.stop_ids if stop_ids is None else tuple(int(s) for s in stop_ids)
        sampling_state = self.sampling_state()
        prefill = self.prefill(input_ids, attention_mask, pixel_values, image_grid_thw, sampling_state=sampling_state)
        graphdef, state = sampling_state
        with self._ctx():
            out = _decode(graphdef, state, prefill, key, num_samples=int(num_samples), max_new=int(max_new_tokens),
                          params=params, stop_ids=stops, pad_id=self.pad_id,
                          phases=_phases(int(max_new_tokens), self.decode_buckets))
        n = prefill.num_prompts * num_samples
        def rows(x):
            return process_rows(x, prefill.prompt_ids.shape[0] // jax.process_count() * num_samples)[:n]

        return SampleOutput(tokens=rows(out.tokens).astype(np.int32), logprobs=rows(out.logprobs),
                            sample_logprobs=rows(out.sample_logprobs), lengths=rows(out.lengths).astype(np.int32),
                            stopped=rows(out.stopped), prompt_index=(np.arange(n) // num_samples).astype(np.int32),
                            steps=int(out.step.addressable_data(0)))
