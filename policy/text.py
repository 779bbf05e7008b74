"""Qwen3 text decoder in Flax NNX: RMSNorm, QK-norm, GQA, SwiGLU, interleaved M-RoPE, DeepStack, KV cache.

Why this shape: parameters carry logical axis names (see `policy.sharding`), the decoder layers are
either an `nnx.List` (unscanned) or one stacked module run by `jax.lax.scan` (one compiled layer
body), and both paths share the same functional layer step so remat, DeepStack injection and the KV
cache behave identically. Softmax, norms and the rope tables are computed in float32 whatever the
compute dtype.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from policy.attention import MASKED_SCORE, causal_attention, masked_attention, resolve
from policy.config import Qwen3VLConfig
from policy.decode_attention import Part, attend_part, join
from policy.sharding import constrain, gather_weight


# ---------------------------------------------------------------------------------------------
# Shared primitives (also used by the vision tower)
# ---------------------------------------------------------------------------------------------
def _normal(rngs: nnx.Rngs, shape, std, dtype):
    return (std * jax.random.normal(rngs.params(), shape, jnp.float32)).astype(dtype)


class Dense(nnx.Module):
    """x[..., *in] @ kernel[*in, *out] (+ bias[*out]); multi-dim kernels keep heads shardable."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], in_names: Sequence[str | None],
                 out_names: Sequence[str | None], *, use_bias: bool, dtype, param_dtype, std: float,
                 rngs: nnx.Rngs):
        self.n_in = len(in_shape)
        self.dtype = dtype
        shape = tuple(in_shape) + tuple(out_shape)
        self.names = tuple(in_names) + tuple(out_names)
        self.kernel = nnx.Param(_normal(rngs, shape, std, param_dtype), logical_axes=self.names)
        self.bias = (nnx.Param(jnp.zeros(tuple(out_shape), param_dtype), logical_axes=tuple(out_names))
                     if use_bias else None)

    def __call__(self, x, out_dtype=None):
        k = gather_weight(self.kernel[...].astype(self.dtype), self.names)
        dims = ((tuple(range(x.ndim - self.n_in, x.ndim)), tuple(range(self.n_in))), ((), ()))
        y = jax.lax.dot_general(x.astype(self.dtype), k, dims,
                                preferred_element_type=out_dtype or self.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(y.dtype)
        return y


class RMSNorm(nnx.Module):
    """Qwen3 RMSNorm: normalise in float32, cast back, then scale (HF order)."""

    def __init__(self, dim: int, eps: float, *, param_dtype, names=("norm",)):
        self.eps = eps
        self.scale = nnx.Param(jnp.ones((dim,), param_dtype), logical_axes=tuple(names))

    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return self.scale[...].astype(x.dtype) * y.astype(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return jnp.concatenate([-x[..., h:], x[..., :h]], axis=-1)


REMAT = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def maybe_remat(fn, policy_name: str):
    """Wrap a pure layer step in `jax.checkpoint` with the named policy ('none' = no remat)."""
    if policy_name == "none":
        return fn
    return jax.checkpoint(fn, policy=REMAT[policy_name])


# ---------------------------------------------------------------------------------------------
# Interleaved M-RoPE
# ---------------------------------------------------------------------------------------------
def mrope_tables(positions: jax.Array, config: Qwen3VLConfig, dtype) -> tuple[jax.Array, jax.Array]:
    """cos/sin [B, T, head_dim] for positions [3, B, T] (t, h, w) with interleaved `mrope_section`.

    Frequency j takes its angle from axis h if j % 3 == 1 and j < 3*sec[1], from w if j % 3 == 2 and
    j < 3*sec[2], else from t (transformers `recomposition_frequencies`).
    """
    t = config.text
    d = t.head_dim
    inv_freq = 1.0 / (np.float32(t.rope_theta) ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d)))
    j = np.arange(d // 2)
    sel = np.zeros(d // 2, np.int32)
    sel[(j % 3 == 1) & (j < 3 * t.mrope_section[1])] = 1
    sel[(j % 3 == 2) & (j < 3 * t.mrope_section[2])] = 2
    pos = positions.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq, jnp.float32)  # [3,B,T,d/2]
    freqs = jnp.where(sel == 1, pos[1], jnp.where(sel == 2, pos[2], pos[0]))
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb).astype(dtype), jnp.sin(emb).astype(dtype)


# ---------------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------------
@flax.struct.dataclass
class KVCache:
    """Preallocated keys/values of every layer plus which slots hold real (non-pad) tokens.

    k, v: one stacked [layers, batch, kv_heads, max_len, head_dim] array when the layers are scanned
    (carried through the scan), else a tuple of per-layer [batch, kv_heads, max_len, head_dim]
    arrays (never stacked or unstacked); valid: [batch, max_len] bool. Heads come before slots so
    that attention's matmuls read the cache as it lies (batch dims leading: no transposed copy).
    """

    k: jax.Array | tuple[jax.Array, ...]
    v: jax.Array | tuple[jax.Array, ...]
    valid: jax.Array

    @classmethod
    def init(cls, config: Qwen3VLConfig, batch: int, max_len: int, dtype=None) -> KVCache:
        return cls(kv_zeros(config, batch, max_len, dtype), kv_zeros(config, batch, max_len, dtype),
                   jnp.zeros((batch, max_len), bool))

    @property
    def max_len(self) -> int:
        return self.valid.shape[1]


def kv_zeros(config: Qwen3VLConfig, batch: int, length: int, dtype=None):
    """Zero keys (or values) for every layer: stacked [L, ...] if `config.scan_layers`, else a per-layer tuple."""
    t = config.text
    shape = (batch, t.num_key_value_heads, length, t.head_dim)
    dtype = dtype or config.compute_dtype
    if config.scan_layers:
        return jnp.zeros((t.num_hidden_layers,) + shape, dtype)
    return tuple(jnp.zeros(shape, dtype) for _ in range(t.num_hidden_layers))


@flax.struct.dataclass
class DecodeCache:
    """Decoding cache for G samples per prompt: the samples of a prompt read ONE copy of its prefilled
    keys/values (`prompt`, B rows) and write their own tokens into `gen_k`/`gen_v` (B*G rows, sample
    g of prompt b in row b*G + g), laid out as `KVCache.k`. Every row writes decode step s at
    generated slot s (one `dynamic_update_slice`, no per-row scatter); slots past a row's stop hold
    junk that no kept output reads.
    """

    prompt: KVCache
    gen_k: jax.Array | tuple[jax.Array, ...]
    gen_v: jax.Array | tuple[jax.Array, ...]

    @property
    def gen_len(self) -> int:
        """Generated slots per row."""
        k = self.gen_k[0] if isinstance(self.gen_k, tuple) else self.gen_k
        return k.shape[-2]


def _write_token(gen_kv, k, v, step, layer=None):
    """This token's keys/values k, v [N,K,1,D] into generated slot `step` of gen_kv (k, v) [N,K,S,D], or of
    layer `layer` of the stacked [L,N,K,S,D] caches, in place."""
    if layer is None:
        return tuple(jax.lax.dynamic_update_slice(c, x, (0, 0, step, 0)) for c, x in zip(gen_kv, (k, v)))
    return tuple(jax.lax.dynamic_update_slice(c, x[None], (layer, 0, 0, step, 0)) for c, x in zip(gen_kv, (k, v)))


def _write_rows(buf, chunk, index, axis: int = 1):
    """Per-row dynamic_update_slice along `axis` (of buf): buf[b, ..., index[b]:index[b]+C, ...] = chunk[b]."""
    if chunk.shape[axis] == buf.shape[axis]:  # a chunk as long as the buffer can only start at 0
        return chunk.astype(buf.dtype)

    def one(b, c, i):
        start = tuple(i if d == axis - 1 else 0 for d in range(b.ndim))
        return jax.lax.dynamic_update_slice(b, c.astype(b.dtype), start)
    return jax.vmap(one)(buf, chunk, index)


# ---------------------------------------------------------------------------------------------
# Decoder layer
# ---------------------------------------------------------------------------------------------
class Attention(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        t = config.text
        kw = dict(dtype=config.compute_dtype, param_dtype=config.weight_dtype, std=t.initializer_range, rngs=rngs,
                  use_bias=t.attention_bias)
        E, H, K, D = t.hidden_size, t.num_attention_heads, t.num_key_value_heads, t.head_dim
        self.q = Dense((E,), (H, D), ("embed",), ("heads", "head_dim"), **kw)
        self.k = Dense((E,), (K, D), ("embed",), ("kv_heads", "head_dim"), **kw)
        self.v = Dense((E,), (K, D), ("embed",), ("kv_heads", "head_dim"), **kw)
        self.o = Dense((H, D), (E,), ("heads", "head_dim"), ("embed",), **kw)
        self.q_norm = RMSNorm(D, t.rms_norm_eps, param_dtype=config.weight_dtype, names=("head_dim",))
        self.k_norm = RMSNorm(D, t.rms_norm_eps, param_dtype=config.weight_dtype, names=("head_dim",))
        self.scale = D**-0.5
        self.impl = config.attention_impl
        self.groups = H // K  # query heads per key/value head (decode)

    def project(self, x, cos, sin):
        """Rotated, normed q [B,T,H,D] and k [B,T,K,D], and v [B,T,K,D]."""
        q = self.q_norm(self.q(x))
        k = self.k_norm(self.k(x))
        v = self.v(x)
        c, s = cos[:, :, None, :], sin[:, :, None, :]
        return q * c + rotate_half(q) * s, k * c + rotate_half(k) * s, v

    def __call__(self, x, cos, sin, mask, kv=None, cache_index=None):
        """x [B,T,E]; kv = (k_cache, v_cache) [B,K,S,D] or None; mask [B,T,S] bool with a cache, else the
        [B,T] padding mask (causal is implied).

        Returns (y, (k, v)): the updated caches, or this chunk's [B,T,K,D] keys/values without a cache.
        """
        q, k, v = self.project(x, cos, sin)
        if kv is None:  # whole sequences (prefill without cache, training): the platform's kernel
            return self.o(causal_attention(q, k, v, mask, scale=self.scale, impl=self.impl)), (k, v)
        kv = (_write_rows(kv[0], k.swapaxes(1, 2), cache_index, axis=2),
              _write_rows(kv[1], v.swapaxes(1, 2), cache_index, axis=2))
        return self.o(masked_attention(q, kv[0].swapaxes(1, 2), kv[1].swapaxes(1, 2), mask, self.scale)), kv

    def decode(self, x, cos, sin, prompt_kv, gen_kv, prompt_mask, step, layer=None):
        """One new token per row against a shared prompt cache and the rows' own generated cache.

        x [N,1,E] with N = B*G; prompt_kv (k, v) [B,K,Tp,D], read once for the G samples of each prompt;
        gen_kv (k, v) [N,K,S,D]; or both stacked ([L,B,K,Tp,D], [L,N,K,S,D]) with `layer` the index to
        use. This token's keys/values go to generated slot `step` in place; keys are the valid prompt
        slots (prompt_mask [B,Tp]) and generated slots 0..step. Returns (y [N,1,E], updated gen_kv).
        On TPU (attention "splash"/"auto") each cache part goes through `policy.decode_attention`.
        """
        q, k, v = self.project(x, cos, sin)
        gk, gv = gen_kv
        k, v = k.swapaxes(1, 2).astype(gk.dtype), v.swapaxes(1, 2).astype(gv.dtype)  # [N,K,1,D], the cache's layout
        if resolve(self.impl) == "splash":
            return self._decode_kernel(q, k, v, prompt_kv, gen_kv, prompt_mask, step, layer)
        # A layer's own cache is written first and read after (slots <= step): XLA updates it in place.
        # A stacked cache is read BEFORE this token is written (slots < step) and the token's own
        # key/value join as a third part: reading a layer of it after the in-place write made XLA copy
        # that layer's whole slice out on every step (3x the generated cache's bytes); reading a
        # layer's own cache before its write makes XLA:CPU copy the cache instead.
        stacked = layer is not None
        if stacked:
            k_gen, v_gen = gk[layer], gv[layer]
        else:
            gk, gv = _write_token((gk, gv), k, v, step, layer)
            k_gen, v_gen = gk, gv
        pk, pv = prompt_kv if layer is None else (prompt_kv[0][layer], prompt_kv[1][layer])
        B, K, Tp, D = pk.shape
        N, _, S, _ = k_gen.shape
        G, g = N // B, self.groups
        # The softmax spans the prompt cache, the generated cache and this token without joining their
        # scores: one shared max, unnormalised weights per part, the sum divided out of the [N, K, g, D]
        # result. Why: a concatenated [N, K, g, Tp + S] score array (and its slices) is several f32 passes
        # over every slot, as many bytes per chip as the shared prompt cache itself. Only the small
        # tensors (queries, scores) change shape: the caches are read as they lie.
        qn = q.reshape(N, K, g, D)
        f32 = jnp.float32
        s_prompt = jnp.einsum("bnkgd,bksd->bnkgs", qn.reshape(B, G, K, g, D), pk.astype(q.dtype),
                              preferred_element_type=f32)
        s_gen = jnp.einsum("nkgd,nksd->nkgs", qn, k_gen.astype(q.dtype), preferred_element_type=f32)
        s_prompt = jnp.where(prompt_mask[:, None, None, None, :], s_prompt * self.scale, MASKED_SCORE)
        s_gen = jnp.where(jnp.arange(S) < step + (0 if stacked else 1), s_gen * self.scale, MASKED_SCORE)
        top = jnp.maximum(jnp.max(s_prompt, axis=-1).reshape(N, K, g), jnp.max(s_gen, axis=-1))
        if stacked:
            s_new = jnp.einsum("nkgd,nkd->nkg", qn, k[:, :, 0].astype(q.dtype), preferred_element_type=f32) * self.scale
            top = jnp.maximum(top, s_new)
        e_prompt = jnp.exp(s_prompt - top.reshape(B, G, K, g)[..., None])
        e_gen = jnp.exp(s_gen - top[..., None])
        total = jnp.sum(e_prompt, axis=-1).reshape(N, K, g) + jnp.sum(e_gen, axis=-1)
        out = jnp.einsum("bnkgs,bksd->bnkgd", e_prompt.astype(q.dtype), pv.astype(q.dtype),
                         preferred_element_type=f32).reshape(N, K, g, D)
        out = out + jnp.einsum("nkgs,nksd->nkgd", e_gen.astype(q.dtype), v_gen.astype(q.dtype),
                               preferred_element_type=f32)
        if stacked:
            e_new = jnp.exp(s_new - top)
            total = total + e_new
            out = out + e_new.astype(q.dtype)[..., None].astype(f32) * v[:, :, 0].astype(q.dtype)[:, :, None, :]
            gk, gv = _write_token((gk, gv), k, v, step, layer)
        out = (out / total[..., None]).astype(q.dtype)
        return self.o(out.reshape(N, 1, K * g, D)), (gk, gv)

    def _decode_kernel(self, q, k, v, prompt_kv, gen_kv, prompt_mask, step, layer):
        """`decode` with the flash-decoding kernel: the prompt part (a prompt's G x g queries at once),
        the generated part and, for a stacked cache (read before this token is written), the new token,
        joined by their maxima and sums."""
        gk, gv = gen_kv
        pk, pv = prompt_kv
        B, K, D = pk.shape[-4], pk.shape[-3], pk.shape[-1]
        N, g = q.shape[0], self.groups
        G = N // B
        qn = q.reshape(N, K, g, D)
        per_prompt = qn.reshape(B, G, K, g, D).swapaxes(1, 2).reshape(B, K, G * g, D)
        prompt = attend_part(per_prompt, pk, pv, scale=self.scale, keep=prompt_mask, layer=layer)
        parts = [Part(*(x.reshape(B, K, G, g, *x.shape[3:]).swapaxes(1, 2).reshape(N, K, g, *x.shape[3:])
                        for x in prompt))]
        if layer is None:
            gk, gv = _write_token((gk, gv), k, v, step, layer)
            parts.append(attend_part(qn, gk, gv, scale=self.scale, limit=step + 1))
        else:
            parts.append(attend_part(qn, gk, gv, scale=self.scale, limit=step, layer=layer))
            s_new = jnp.einsum("nkgd,nkd->nkg", qn, k[:, :, 0].astype(q.dtype),
                               preferred_element_type=jnp.float32) * self.scale
            new_value = jnp.broadcast_to(v.astype(jnp.float32), (N, K, g, D))
            parts.append(Part(new_value, s_new, jnp.ones_like(s_new)))
            gk, gv = _write_token((gk, gv), k, v, step, layer)
        out = join(parts).astype(q.dtype)
        return self.o(out.reshape(N, 1, K * g, D)), (gk, gv)


class MLP(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        t = config.text
        if t.hidden_act != "silu":
            raise NotImplementedError(f"text hidden_act {t.hidden_act!r}: Qwen3-VL uses silu")
        kw = dict(dtype=config.compute_dtype, param_dtype=config.weight_dtype, std=t.initializer_range, rngs=rngs,
                  use_bias=False)
        E, F = t.hidden_size, t.intermediate_size
        self.gate = Dense((E,), (F,), ("embed",), ("mlp",), **kw)
        self.up = Dense((E,), (F,), ("embed",), ("mlp",), **kw)
        self.down = Dense((F,), (E,), ("mlp",), ("embed",), **kw)

    def __call__(self, x):
        return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class DecoderLayer(nnx.Module):
    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        t = config.text
        self.input_norm = RMSNorm(t.hidden_size, t.rms_norm_eps, param_dtype=config.weight_dtype)
        self.attn = Attention(config, rngs=rngs)
        self.post_norm = RMSNorm(t.hidden_size, t.rms_norm_eps, param_dtype=config.weight_dtype)
        self.mlp = MLP(config, rngs=rngs)

    def __call__(self, h, cos, sin, mask, kv=None, cache_index=None):
        a, kv = self.attn(self.input_norm(h), cos, sin, mask, kv, cache_index)
        return self._finish(h, a), kv

    def decode(self, h, cos, sin, prompt_kv, gen_kv, prompt_mask, step, layer=None):
        """One token per row; see `Attention.decode`."""
        a, gen_kv = self.attn.decode(self.input_norm(h), cos, sin, prompt_kv, gen_kv, prompt_mask, step, layer)
        return self._finish(h, a), gen_kv

    def _finish(self, h, attn_out):
        h = h + attn_out
        h = h + self.mlp(self.post_norm(h))
        return constrain(h, ("batch", "length", "act_embed"))


# ---------------------------------------------------------------------------------------------
# Text model
# ---------------------------------------------------------------------------------------------
def attention_mask(attn_mask: jax.Array, cache: KVCache, cache_index: jax.Array):
    """[B, T, S] visibility over the cache: causal over slots and only real tokens as keys."""
    B, T = attn_mask.shape
    S = cache.max_len
    qpos = cache_index[:, None] + jnp.arange(T)[None, :]  # [B,T] slot of each query
    valid = _write_rows(cache.valid, attn_mask.astype(bool), cache_index, axis=1)
    return (jnp.arange(S)[None, None, :] <= qpos[:, :, None]) & valid[:, None, :]


class TextModel(nnx.Module):
    """Embedding table + decoder layers + final norm (the LM head lives in `policy.model`)."""

    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        t = config.text
        self.config = config
        self.embed = nnx.Param(_normal(rngs, (t.vocab_size, t.hidden_size), t.initializer_range, config.weight_dtype),
                               logical_axes=("vocab", "embed"))
        if config.scan_layers:
            @nnx.split_rngs(splits=t.num_hidden_layers)
            @nnx.vmap(in_axes=(0,), out_axes=0,
                      transform_metadata={nnx.PARTITION_NAME: "layers", "logical_axes": "layers"})
            def make(r):
                return DecoderLayer(config, rngs=r)
            self.layers = make(rngs)
        else:
            self.layers = nnx.List([DecoderLayer(config, rngs=rngs) for _ in range(t.num_hidden_layers)])
        self.norm = RMSNorm(t.hidden_size, t.rms_norm_eps, param_dtype=config.weight_dtype)

    def embed_tokens(self, input_ids):
        return jnp.take(self.embed[...], input_ids, axis=0).astype(self.config.compute_dtype)

    def __call__(self, h, positions, attn_mask, deepstack=None, cache: KVCache | None = None,
                 cache_index=None):
        """Run the decoder on embeddings h [B,T,E].

        positions [3,B,T] int; attn_mask [B,T] (1 = real token); deepstack [n, B, T, E] dense features
        (zeros off image tokens) added after layers 0..n-1; cache/cache_index: write this chunk's keys
        and values at per-row slots cache_index[b] .. +T and attend over the whole cache.
        Returns (final-normed hidden [B,T,E], updated cache or None).
        """
        cfg = self.config
        dtype = cfg.compute_dtype
        h = constrain(h.astype(dtype), ("batch", "length", "act_embed"))
        cos, sin = mrope_tables(positions, cfg, dtype)
        mask = attn_mask if cache is None else attention_mask(attn_mask, cache, cache_index)
        n_ds = 0 if deepstack is None else deepstack.shape[0]
        L = cfg.text.num_hidden_layers

        def step(layer_state, graphdef, h, kv, i):
            layer = nnx.merge(graphdef, layer_state)
            h, kv = layer(h, cos, sin, mask, kv, cache_index)
            if n_ds:
                add = deepstack[jnp.minimum(i, n_ds - 1)].astype(h.dtype)
                h = jnp.where(i < n_ds, h + add, h)
            return h, kv

        if cfg.scan_layers:
            graphdef, stacked = nnx.split(self.layers)
            body = maybe_remat(lambda st, h, kv, i: step(st, graphdef, h, kv, i), cfg.remat)

            def scan_fn(h, xs):
                st, i, kv = xs
                h, kv = body(st, h, kv, i)
                return h, (kv if cache is not None else None)

            kvs = (cache.k, cache.v) if cache is not None else None
            h, new_kv = jax.lax.scan(scan_fn, h, (stacked, jnp.arange(L), kvs))
        else:
            ks, vs = [], []
            for i, layer in enumerate(self.layers):
                graphdef, st = nnx.split(layer)
                body = maybe_remat(lambda st, h, kv, i, g=graphdef: step(st, g, h, kv, i), cfg.remat)
                kv = (cache.k[i], cache.v[i]) if cache is not None else None
                h, kv = body(st, h, kv, jnp.asarray(i))
                if cache is not None:
                    ks.append(kv[0])
                    vs.append(kv[1])
            new_kv = (tuple(ks), tuple(vs)) if cache is not None else None
        h = self.norm(h)
        if cache is None:
            return h, None
        valid = _write_rows(cache.valid, attn_mask.astype(bool), cache_index, axis=1)
        return h, KVCache(new_kv[0], new_kv[1], valid)

    def decode(self, h, positions, cache: DecodeCache, step):
        """One token per row: h [B*G,1,E] embeddings at M-RoPE positions [3,B*G,1], written at generated
        slot `step` of `cache` (in place). Returns (final-normed hidden [B*G,1,E], updated cache)."""
        cfg = self.config
        h = constrain(h.astype(cfg.compute_dtype), ("batch", "length", "act_embed"))
        cos, sin = mrope_tables(positions, cfg, cfg.compute_dtype)
        prompt = cache.prompt
        if cfg.scan_layers:
            graphdef, stacked = nnx.split(self.layers)

            def body(carry, xs):  # the stacked caches are indexed by layer inside, not sliced by the scan
                h, gk, gv = carry
                st, i = xs
                h, (gk, gv) = nnx.merge(graphdef, st).decode(h, cos, sin, (prompt.k, prompt.v), (gk, gv),
                                                             prompt.valid, step, layer=i)
                return (h, gk, gv), None

            xs = (stacked, jnp.arange(cfg.text.num_hidden_layers))
            (h, gen_k, gen_v), _ = jax.lax.scan(body, (h, cache.gen_k, cache.gen_v), xs)
        else:
            gen_k, gen_v = list(cache.gen_k), list(cache.gen_v)
            for i, layer in enumerate(self.layers):
                h, (gen_k[i], gen_v[i]) = layer.decode(h, cos, sin, (prompt.k[i], prompt.v[i]),
                                                       (gen_k[i], gen_v[i]), prompt.valid, step)
            gen_k, gen_v = tuple(gen_k), tuple(gen_v)
        return self.norm(h), DecodeCache(prompt, gen_k, gen_v)
