"""Decode attention on TPU: a Pallas flash-decoding kernel over one part of a KV cache.

Why a kernel: a decode step's attention, written as einsums, makes XLA write each part's float32 scores
[rows, heads, slots] to HBM and read them back twice (weights' sum, weighted values). For the shared
prompt cache the scores of a prompt's G samples are as large as a quarter of the keys and values they
come from, so on the 8B GRPO run's shapes (`launch.aot`, v5p-64) those passes were ~10% of every
decode step's HBM bytes. The kernel streams a part's keys and values through VMEM block by block with
an online softmax (the scores never leave the chip) and returns the part's unnormalised output, its
largest score and its sum of weights, which `policy.text.Attention.decode` joins across the prompt
cache, the generated cache and the new token (the softmax of the whole row, flash-decoding style).

The cache can be a layer's own [X, K, S, D] array or the stacked [L, X, K, S, D] cache of scanned
layers with the layer index a scalar-prefetch argument: the kernel reads that layer's slice in place
(slicing it in XLA would copy the slice out for the custom call on every step). Slots are kept by a
[X, S] mask (prompt cache: its padding) or by `slot < limit` (generated cache); key/value blocks past
`limit` are neither fetched (their block index is clamped, so the pipeline re-uses the last block) nor
computed. `pallas_call`'s cost estimate gives XLA (and `policy.hlo_cost`) the bytes of every slot a
call could read and the FLOPs of its two products, which XLA's cost analysis cannot see in a kernel.

Runs under `shard_map` over the ambient mesh: rows split as `batch`, key/value heads as
`act_kv_heads`; each chip reads only the cache it holds. Elsewhere than TPU it runs in Pallas
interpret mode (tests: it equals the einsum path).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from policy.attention import MASKED_SCORE, _ambient_mesh, target_platform
from policy.sharding import logical_to_spec

_LANES = 128
KV_BLOCK = _LANES  # caches are read in whole blocks of this many slots (others are padded per call)
_BLOCKS = (512, 256, KV_BLOCK)  # slots a grid step reads: the largest of these dividing the cache


class Part(NamedTuple):
    """A softmax over one part of the keys, not yet normalised: `out` [X,K,m,D] float32 = sum over kept
    slots of exp(score - top) * value, `top` [X,K,m] the largest kept score (MASKED_SCORE where none is
    kept), `total` [X,K,m] the sum of exp(score - top)."""

    out: jax.Array
    top: jax.Array
    total: jax.Array


def join(parts: list[Part]) -> jax.Array:
    """Softmax-weighted values over all parts' keys together: [X,K,m,D] float32."""
    top = functools.reduce(jnp.maximum, [p.top for p in parts])
    weights = [jnp.exp(p.top - top) for p in parts]
    out = sum(w[..., None] * p.out for w, p in zip(weights, parts))
    total = sum(w * p.total for w, p in zip(weights, parts))
    return out / total[..., None]


def _kernel(layer_ref, limit_ref, q_ref, k_ref, v_ref, *rest, scale: float, block: int, masked: bool):
    if masked:
        keep_ref, out_ref, top_ref, total_ref, top_sc, total_sc, acc_sc = rest
    else:
        out_ref, top_ref, total_ref, top_sc, total_sc, acc_sc = rest
    del layer_ref  # used by the index maps only
    s = pl.program_id(2)
    limit = limit_ref[0]

    @pl.when(s == 0)
    def _init():
        top_sc[...] = jnp.full(top_sc.shape, MASKED_SCORE, jnp.float32)
        total_sc[...] = jnp.zeros(total_sc.shape, jnp.float32)
        acc_sc[...] = jnp.zeros(acc_sc.shape, jnp.float32)

    @pl.when(s * block < limit)
    def _step():
        q = q_ref[...]
        k = k_ref[...].astype(q.dtype)
        scores = jax.lax.dot_general(q, k, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32) * scale
        slot = s * block + jax.lax.broadcasted_iota(jnp.int32, scores.shape, 1)
        keep = slot < limit
        if masked:
            keep = keep & (keep_ref[...] != 0)
        scores = jnp.where(keep, scores, MASKED_SCORE)
        prev = top_sc[...]  # [m, 128], every lane the same
        new = jnp.maximum(prev, jnp.max(scores, axis=1, keepdims=True))
        weights = jnp.exp(scores - new[:, :1])
        alpha = jnp.exp(prev - new)
        total_sc[...] = alpha * total_sc[...] + jnp.sum(weights, axis=1, keepdims=True)
        top_sc[...] = new
        values = jax.lax.dot_general(weights.astype(q.dtype), v_ref[...].astype(q.dtype), (((1,), (0,)), ((), ())),
                                     preferred_element_type=jnp.float32)
        acc_sc[...] = alpha[:, :1] * acc_sc[...] + values

    @pl.when(s == pl.num_programs(2) - 1)
    def _done():
        out_ref[...] = acc_sc[...]
        top_ref[...] = top_sc[...]
        total_ref[...] = total_sc[...]


def _part_on_shard(q, k, v, keep, layer, limit, *, scale: float, interpret: bool) -> Part:
    """One shard: q [X,K,m,D]; k, v [L,X,K,S,D] (S a multiple of 128); keep [X,S] or None; layer, limit
    int32 scalars."""
    X, K, m, D = q.shape
    S = k.shape[3]
    block = next(b for b in _BLOCKS if S % b == 0)

    def live_block(s, limit_ref):  # blocks past the last kept slot map to it: the pipeline fetches nothing new
        return jnp.minimum(s, jnp.maximum(limit_ref[0] - 1, 0) // block)

    def kv_index(x, h, s, layer_ref, limit_ref):
        return layer_ref[0], x, h, live_block(s, limit_ref), 0

    sq = pl.Squeezed()
    in_specs = [pl.BlockSpec((sq, sq, m, D), lambda x, h, s, *_: (x, h, 0, 0)),
                pl.BlockSpec((sq, sq, sq, block, D), kv_index),
                pl.BlockSpec((sq, sq, sq, block, D), kv_index)]
    args = [q, k, v]
    if keep is not None:
        in_specs.append(pl.BlockSpec((sq, 1, block), lambda x, h, s, layer_ref, limit_ref: (
            x, 0, live_block(s, limit_ref))))
        args.append(keep.astype(jnp.int32)[:, None, :])
    stat = pl.BlockSpec((sq, sq, m, _LANES), lambda x, h, s, *_: (x, h, 0, 0))
    width = jnp.dtype(k.dtype).itemsize
    cost = pl.CostEstimate(
        flops=4 * X * K * m * S * D, transcendentals=X * K * m * S,
        bytes_accessed=(2 * X * K * S * D * width + q.size * q.dtype.itemsize
                        + (X * S * 4 if keep is not None else 0) + X * K * m * (D + 2 * _LANES) * 4))
    out, top, total = pl.pallas_call(
        functools.partial(_kernel, scale=scale, block=block, masked=keep is not None),
        out_shape=(jax.ShapeDtypeStruct((X, K, m, D), jnp.float32),
                   jax.ShapeDtypeStruct((X, K, m, _LANES), jnp.float32),
                   jax.ShapeDtypeStruct((X, K, m, _LANES), jnp.float32)),
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2, grid=(X, K, S // block), in_specs=in_specs,
            out_specs=(pl.BlockSpec((sq, sq, m, D), lambda x, h, s, *_: (x, h, 0, 0)), stat, stat),
            scratch_shapes=[pltpu.VMEM((m, _LANES), jnp.float32), pltpu.VMEM((m, _LANES), jnp.float32),
                            pltpu.VMEM((m, D), jnp.float32)]),
        compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "parallel", "arbitrary")),
        cost_estimate=cost, interpret=interpret, name="flash_decode",
    )(jnp.reshape(layer, (1,)).astype(jnp.int32), jnp.reshape(limit, (1,)).astype(jnp.int32), *args)
    return Part(out, top[..., 0], total[..., 0])


def attend_part(q, k, v, *, scale: float, keep=None, limit=None, layer=None) -> Part:
    """Attention of q [X,K,m,D] (m queries per key/value head) over k, v [X,K,S,D], or the stacked
    [L,X,K,S,D] cache with `layer` its index, keeping slots where `keep` [X,S] is true and slots below
    `limit` (an int32 scalar; default all). Returns the part's `Part`, float32."""
    if layer is None:
        k, v, layer = k[None], v[None], 0
    S = k.shape[-2]
    limit = jnp.int32(S) if limit is None else limit
    if S % KV_BLOCK:  # a cache not in whole blocks: padded (a copy) on every call; the padding is never kept
        width = ((0, 0),) * (k.ndim - 2) + ((0, -S % KV_BLOCK), (0, 0))
        k, v = jnp.pad(k, width), jnp.pad(v, width)
        keep = None if keep is None else jnp.pad(keep, ((0, 0), (0, -S % KV_BLOCK)))
        limit = jnp.minimum(limit, S)
    kernel = functools.partial(_part_on_shard, scale=scale, interpret=target_platform() != "tpu")
    layer, limit = jnp.asarray(layer, jnp.int32), jnp.asarray(limit, jnp.int32)
    mesh = _ambient_mesh()
    if mesh is None or mesh.size == 1:
        return kernel(q, k, v, keep, layer, limit)
    P = jax.sharding.PartitionSpec
    rows = ("batch", "act_kv_heads", None, None)
    q_spec = logical_to_spec(rows, q.shape, mesh)
    kv_spec = logical_to_spec((None,) + rows, k.shape, mesh)
    if q_spec[:2] != kv_spec[1:3]:
        raise ValueError(f"queries {q_spec} and cache {kv_spec} split rows or heads differently")
    stat_spec = P(*q_spec[:3])
    if keep is None:
        args, specs = (q, k, v, layer, limit), (q_spec, kv_spec, kv_spec, P(), P())

        def body(q, k, v, layer, limit):
            return kernel(q, k, v, None, layer, limit)
    else:
        args, specs = (q, k, v, layer, limit, keep), (q_spec, kv_spec, kv_spec, P(), P(), P(q_spec[0], None))

        def body(q, k, v, layer, limit, keep):
            return kernel(q, k, v, keep, layer, limit)
    return jax.shard_map(body, mesh=mesh, in_specs=specs, out_specs=Part(q_spec, stat_spec, stat_spec),
                         check_vma=False)(*args)
