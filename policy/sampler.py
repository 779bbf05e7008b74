"""`Sampler`: batched KV-cache generation for `Qwen3VL` (greedy / temperature, top-k, top-p, min-p,
repetition and presence penalties), G samples per prompt sharing one prefill.

Why this shape:
  * Prefill runs once per prompt on a bucketed static shape (prompt length, patch count and,
    optionally, batch size padded to buckets) and keeps only the last real position's hidden state,
    so no [B, T, vocab] logits are ever built.
  * The prompt cache is repeated G times and padded to `prompt_len + max_new_tokens` slots inside
    the decode jit; the whole decode loop is one `jax.lax.while_loop` that exits as soon as every
    row has stopped.
  * Each row keeps its own write slot and its own M-RoPE position `n_real + rope_delta` (n_real =
    real tokens already in its cache, see `policy.rope_index`), so left- or right-padded prompts
    and rows that stop early are all handled without a shared end index. A stopped row writes
    invalid (masked) slots and stops advancing.

Log-probs: `SampleOutput.logprobs` is the raw model log-probability of each sampled token
(log_softmax of the float32 logits at temperature 1, before penalties and filters) -- the quantity a
teacher-forced `forward_logits` pass reproduces and GRPO's ratio needs. `sample_logprobs` is the
log-probability under the distribution actually sampled from (after penalties, temperature and
filters; 0 for greedy).
"""
from __future__ import annotations

import contextlib
import dataclasses
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from policy.image_processor import DEFAULT_PATCH_BUCKETS, pick_bucket
from policy.model import prepare_inputs
from policy.processor import DEFAULT_SEQ_BUCKETS
from policy.host_batch import agreed_max, gather_patches, process_rows, put_everywhere, put_rows
from policy.sharding import constrain
from policy.text import KVCache
from policy.vision import VisionInputs

_NEG_INF = -jnp.inf


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """Static sampling knobs (hashable: each distinct value compiles once).

    temperature 0 = greedy (argmax after penalties). top_k 0 = off; top_p 1 = off; min_p 0 = off.
    repetition_penalty (HF semantics, 1 = off): over tokens in prompt + generated, logits > 0 are
    divided by it and logits < 0 multiplied. presence_penalty (OpenAI/vLLM semantics, 0 = off):
    subtracted once from every token already *generated* in this sample.
    Order (as transformers): suppress -> penalties -> temperature -> top_k -> top_p -> min_p.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    suppress_ids: tuple[int, ...] = ()  # never sampled (e.g. <|image_pad|>), greedy included

    def __post_init__(self):
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1 or not 0 <= self.min_p <= 1:
            raise ValueError(f"invalid sampling params {self}")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")
        object.__setattr__(self, "suppress_ids", tuple(int(i) for i in self.suppress_ids))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def uses_seen(self) -> bool:
        return self.repetition_penalty != 1.0

    @property
    def uses_generated(self) -> bool:
        return self.presence_penalty != 0.0


@dataclasses.dataclass
class SampleOutput:
    """Numpy results; row i is sample i % G of prompt `prompt_index[i]` (= i // G)."""

    tokens: np.ndarray  # [B*G, max_new] int32, pad_id after the stop token
    logprobs: np.ndarray  # [B*G, max_new] float32 raw model log-prob (T=1, no filters); 0 after stop
    sample_logprobs: np.ndarray  # [B*G, max_new] float32 log-prob under the sampling distribution
    lengths: np.ndarray  # [B*G] int32 generated tokens, counting the stop token
    stopped: np.ndarray  # [B*G] bool: ended on a stop token (False: hit max_new_tokens)
    prompt_index: np.ndarray  # [B*G] int32


# ---------------------------------------------------------------------------------------------
# Pure logit processors ([..., V] float32 in, same shape out; removed tokens get -inf)
# ---------------------------------------------------------------------------------------------
def apply_penalties(logits, seen=None, generated=None, repetition_penalty=1.0, presence_penalty=0.0):
    """HF repetition penalty over `seen` [.., V] bool; presence penalty over `generated` [.., V] bool."""
    if seen is not None and repetition_penalty != 1.0:
        pen = jnp.where(logits < 0, logits * repetition_penalty, logits / repetition_penalty)
        logits = jnp.where(seen, pen, logits)
    if generated is not None and presence_penalty != 0.0:
        logits = logits - presence_penalty * generated.astype(logits.dtype)
    return logits


def top_k_filter(logits, k: int):
    """Keep the k largest (ties with the k-th kept, as transformers' TopKLogitsWarper)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = jax.lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth, _NEG_INF, logits)


def _top_p_threshold(sorted_desc, p: float):
    """Smallest logit kept by nucleus filtering, from logits sorted descending (may hold -inf)."""
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass strictly ahead of each token
    keep = before < p
    keep = keep.at[..., 0].set(True)
    n_keep = jnp.sum(keep, axis=-1, keepdims=True)
    return jnp.take_along_axis(sorted_desc, n_keep - 1, axis=-1)


def top_p_filter(logits, p: float, top_k: int = 0):
    """Keep the smallest prefix (by descending prob) whose mass reaches p (transformers' TopPLogitsWarper:
    a token survives iff the mass of tokens ranked strictly above it is < p). With top_k > 0 the logits
    are assumed already top-k filtered and only the k candidates are sorted."""
    if p >= 1.0:
        return logits
    if 0 < top_k < logits.shape[-1]:
        cand = jax.lax.top_k(logits, top_k)[0]
    else:
        cand = -jnp.sort(-logits, axis=-1)
    return jnp.where(logits < _top_p_threshold(cand, p), _NEG_INF, logits)


def min_p_filter(logits, min_p: float):
    """Remove tokens whose probability is below min_p * max probability (transformers' MinPLogitsWarper)."""
    if min_p <= 0.0:
        return logits
    ratio = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))  # p_i / p_max
    return jnp.where(ratio < min_p, _NEG_INF, logits)


def process_logits(logits, params: SamplingParams, seen=None, generated=None):
    """Penalties, temperature and filters: the logits of the distribution actually sampled from."""
    x = logits.astype(jnp.float32)
    if params.suppress_ids:
        x = x.at[..., jnp.asarray(params.suppress_ids, jnp.int32)].set(_NEG_INF)
    x = apply_penalties(x, seen, generated, params.repetition_penalty, params.presence_penalty)
    if params.greedy:
        return x
    x = x / params.temperature
    x = top_k_filter(x, params.top_k)
    x = top_p_filter(x, params.top_p, params.top_k)
    return min_p_filter(x, params.min_p)


def sample_tokens(key, logits, params: SamplingParams, seen=None, generated=None):
    """(token [N] int32, raw log-prob [N], sampling-distribution log-prob [N]) for logits [N, V]."""
    x = process_logits(logits, params, seen, generated)
    if params.greedy:
        tok = jnp.argmax(x, axis=-1).astype(jnp.int32)
        slp = jnp.zeros(tok.shape, jnp.float32)
    else:
        tok = jax.random.categorical(key, x, axis=-1).astype(jnp.int32)
        slp = jnp.take_along_axis(jax.nn.log_softmax(x, axis=-1), tok[:, None], axis=-1)[:, 0]
    raw = jnp.take_along_axis(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), tok[:, None], axis=-1)[:, 0]
    return tok, raw, slp


# ---------------------------------------------------------------------------------------------
# Jitted prefill and decode loop (pure functions of the model state; graphdef is static)
# ---------------------------------------------------------------------------------------------
def _constrain_cache(cache: KVCache) -> KVCache:
    names = ("layers", "batch", "cache_length", "act_kv_heads", "head_dim")
    return KVCache(constrain(cache.k, names), constrain(cache.v, names),
                   constrain(cache.valid, ("batch", "cache_length")))


@partial(jax.jit, static_argnums=(0,))
def _prefill(graphdef, state, ids, positions, mask, pixel_values, meta):
    """Last real position's logits [B, V] float32 and the prompt's KV cache (T slots)."""
    model = nnx.merge(graphdef, state)
    B, T = ids.shape
    cache = _constrain_cache(KVCache.init(model.config, B, T))
    h, cache = model(ids, positions, mask, pixel_values, meta, cache=cache,
                     cache_index=jnp.zeros((B,), jnp.int32), return_hidden=True)
    last = T - 1 - jnp.argmax(mask[:, ::-1] > 0, axis=1)
    return model.logits(h[jnp.arange(B), last]), cache


@partial(jax.jit, static_argnums=(0,), static_argnames=("num_samples", "max_new", "params", "stop_ids", "pad_id"))
def _decode(graphdef, state, cache, logits0, n_real, deltas, prompt_ids, prompt_mask, active, key, *,
            num_samples, max_new, params, stop_ids, pad_id):
    model = nnx.merge(graphdef, state)
    G = num_samples
    B, T = prompt_ids.shape
    N = B * G
    V = logits0.shape[-1]
    rep = lambda x: jnp.repeat(x, G, axis=0)  # noqa: E731
    widen = lambda x: jnp.pad(jnp.repeat(x, G, axis=1), ((0, 0), (0, 0), (0, max_new)) + ((0, 0),) * (x.ndim - 3))  # noqa: E731
    cache = _constrain_cache(KVCache(widen(cache.k), widen(cache.v),
                                     jnp.pad(rep(cache.valid), ((0, 0), (0, max_new)))))
    stops = jnp.asarray(stop_ids if stop_ids else (-1,), jnp.int32)
    rows = jnp.arange(N)
    seen = None
    if params.uses_seen:
        seen = jnp.zeros((B, V), bool).at[jnp.arange(B)[:, None], prompt_ids].max(prompt_mask > 0)
        seen = rep(seen)
    carry = dict(
        cache=cache, done=~rep(active), n_real=rep(n_real), slot=jnp.full((N,), T, jnp.int32),
        tokens=jnp.full((N, max_new), pad_id, jnp.int32), logprobs=jnp.zeros((N, max_new), jnp.float32),
        sample_logprobs=jnp.zeros((N, max_new), jnp.float32), lengths=jnp.zeros((N,), jnp.int32),
        stopped=jnp.zeros((N,), bool), last=jnp.full((N,), pad_id, jnp.int32), seen=seen,
        generated=jnp.zeros((N, V), bool) if params.uses_generated else None, step=jnp.int32(0))
    deltas = rep(deltas)

    def choose(c, logits):
        """Sample step `c['step']` from logits [N, V] and record it for live rows."""
        s = c["step"]
        tok, lp, slp = sample_tokens(jax.random.fold_in(key, s), logits, params, c["seen"], c["generated"])
        live = ~c["done"]
        tok = jnp.where(live, tok, pad_id)
        put = lambda buf, x: jax.lax.dynamic_update_slice(buf, x[:, None], (0, s))  # noqa: E731
        hit = live & jnp.any(tok[:, None] == stops[None, :], axis=-1)
        c = dict(c, tokens=put(c["tokens"], tok), logprobs=put(c["logprobs"], jnp.where(live, lp, 0.0)),
                 sample_logprobs=put(c["sample_logprobs"], jnp.where(live, slp, 0.0)),
                 lengths=c["lengths"] + live, stopped=c["stopped"] | hit, done=c["done"] | hit, last=tok,
                 step=s + 1)
        if c["seen"] is not None:
            c["seen"] = c["seen"].at[rows, tok].max(live)
        if c["generated"] is not None:
            c["generated"] = c["generated"].at[rows, tok].max(live)
        return c

    def cond(c):
        return (c["step"] < max_new) & ~jnp.all(c["done"])

    def body(c):
        live = ~c["done"]  # rows whose previous token is real and still need logits
        pos = jnp.broadcast_to((c["n_real"] + deltas[:, 0])[None, :, None], (3, N, 1)).astype(jnp.int32)
        logits, cache = model(c["last"][:, None], pos, live[:, None].astype(jnp.int32), cache=c["cache"],
                              cache_index=c["slot"])
        c = dict(c, cache=_constrain_cache(cache), n_real=c["n_real"] + live, slot=c["slot"] + live)
        return choose(c, logits[:, 0])

    carry = choose(carry, rep(logits0))
    carry = jax.lax.while_loop(cond, body, carry)
    return {k: carry[k] for k in ("tokens", "logprobs", "sample_logprobs", "lengths", "stopped")}


# ---------------------------------------------------------------------------------------------
# Host-side driver
# ---------------------------------------------------------------------------------------------
class Sampler:
    """Batched generation for a `Qwen3VL` (the policy or the reward model).

    prompt_buckets / patch_buckets / batch_buckets: static shapes the prompt length, pixel-patch
    count and prompt count are padded up to (None: exact sizes). `mesh`: run under this mesh (inputs
    sharded over `batch`, the model's own parameter shardings kept). On a mesh spanning several
    processes, every process calls `generate` in step with its own prompts (same count on each)
    and gets back its own rows; the global batch is the processes' prompts in process order. The model is re-split on every
    call, so in-place parameter updates (training) are picked up without recompiling.
    """

    def __init__(self, model, *, pad_id: int, stop_ids: Sequence[int] = (),
                 prompt_buckets: Sequence[int] | None = DEFAULT_SEQ_BUCKETS,
                 patch_buckets: Sequence[int] | None = DEFAULT_PATCH_BUCKETS,
                 batch_buckets: Sequence[int] | None = None, mesh=None):
        self.model = model
        self.pad_id = int(pad_id)
        self.stop_ids = tuple(int(s) for s in stop_ids)
        self.prompt_buckets = prompt_buckets
        self.patch_buckets = patch_buckets
        self.batch_buckets = batch_buckets
        self.mesh = mesh

    def _ctx(self):
        return jax.set_mesh(self.mesh) if self.mesh is not None else contextlib.nullcontext()

    def _put(self, x, batch_axis=0):
        return jnp.asarray(x) if self.mesh is None else put_rows(x, self.mesh, batch_axis)

    def _pad_prompts(self, input_ids, attention_mask):
        ids = np.asarray(input_ids)
        ids = ids[None] if ids.ndim == 1 else ids
        mask = (np.ones(ids.shape, np.int32) if attention_mask is None
                else np.asarray(attention_mask, np.int32).reshape(ids.shape))
        B, T = ids.shape
        Tb = pick_bucket(T, self.prompt_buckets) if self.prompt_buckets else T
        Bb = pick_bucket(B, self.batch_buckets) if self.batch_buckets else B
        Tb, Bb = agreed_max(Tb, Bb)  # every process of a multi-host mesh pads to one shape
        out_ids = np.full((Bb, Tb), self.pad_id, np.int64)
        out_mask = np.zeros((Bb, Tb), np.int32)
        out_ids[:B, Tb - T:] = ids  # extra padding goes on the left; real rows keep their layout
        out_mask[:B, Tb - T:] = mask
        return out_ids, out_mask, B

    def prefill(self, input_ids, attention_mask=None, pixel_values=None, image_grid_thw=None):
        """Bucketed prefill. Returns (last logits [Bb, V], cache, n_real [Bb], deltas [Bb, 1], ids, mask, B)."""
        cfg = self.model.config
        if (pixel_values is None) != (image_grid_thw is None):
            raise ValueError("pixel_values and image_grid_thw must be given together")
        ids, mask, B = self._pad_prompts(input_ids, attention_mask)
        pv = meta = None
        num_patches = None
        if pixel_values is not None:
            pv = np.asarray(pixel_values, np.float32)
            num_patches = pick_bucket(pv.shape[0], self.patch_buckets) if self.patch_buckets else pv.shape[0]
            pv = np.concatenate([pv, np.zeros((num_patches - pv.shape[0], pv.shape[1]), np.float32)])
        ids, mask, positions, deltas, meta_np = prepare_inputs(cfg, ids, mask, image_grid_thw, num_patches)
        graphdef, state = nnx.split(self.model)
        with self._ctx():
            if pv is not None and jax.process_count() > 1:  # every process's patches, in global order
                pv, meta_np = gather_patches(pv, meta_np)
                pv, meta = put_everywhere(pv, self.mesh), VisionInputs(*(put_everywhere(x, self.mesh)
                                                                         for x in meta_np))
            elif pv is not None:
                meta = VisionInputs(*(jnp.asarray(x) for x in meta_np))
                pv = jnp.asarray(pv)
            logits, cache = _prefill(graphdef, state, self._put(ids), self._put(positions, 1), self._put(mask),
                                     pv, meta)
        return logits, cache, mask.sum(1).astype(np.int32), deltas, ids, mask, B

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
        logits, cache, n_real, deltas, ids, mask, B = self.prefill(input_ids, attention_mask, pixel_values,
                                                                   image_grid_thw)
        active = np.arange(ids.shape[0]) < B
        graphdef, state = nnx.split(self.model)
        with self._ctx():
            out = _decode(graphdef, state, cache, logits, self._put(n_real), self._put(deltas),
                          self._put(ids.astype(np.int32)), self._put(mask), self._put(active), key,
                          num_samples=int(num_samples), max_new=int(max_new_tokens), params=params,
                          stop_ids=stops, pad_id=self.pad_id)
        n = B * num_samples
        out = {k: process_rows(v, ids.shape[0] * num_samples)[:n] for k, v in out.items()}
        return SampleOutput(tokens=out["tokens"].astype(np.int32), logprobs=out["logprobs"],
                            sample_logprobs=out["sample_logprobs"], lengths=out["lengths"].astype(np.int32),
                            stopped=out["stopped"], prompt_index=(np.arange(n) // num_samples).astype(np.int32))
