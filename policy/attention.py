"""The one attention entry point for whole sequences: picks the kernel by platform.

Why one function: the text decoder (prefill and training) and the vision tower both call it, and the
kernel is a property of where the program runs, not of the layer. `attention_impl` in the config
overrides the choice:

* "splash": the Pallas splash-attention kernel that ships with JAX (TPU; `interpret` mode elsewhere,
  for tests). Causal text attention with padding as segment ids; vision attention with one segment
  per image. Never materialises a score matrix in HBM.
* "cudnn": `jax.nn.dot_product_attention(implementation="cudnn")` (GPU), text only. Padding is
  handled by moving every row's real tokens to the front (causal order kept) and passing their
  count as the key length, so no [T, S] mask is built for any padding pattern.
* "xla": the same call as "cudnn" with XLA's implementation: the CPU stand-in for the cuDNN shape.
* "reference": einsums with an explicit mask (CPU). Vision attention runs block-of-queries by block
  (memory linear in the patch count); cuDNN and XLA have no segment ids, so vision uses it there too.
* "auto": splash on TPU, cudnn on GPU, reference elsewhere; the platform is the ambient mesh's (so an
  ahead-of-time compile for a TPU topology on a CPU host picks splash), else JAX's default backend.

Kernels that cannot be partitioned by XLA (splash) run under `shard_map` over the ambient mesh
(`jax.set_mesh`): batch and heads split as the logical rules say; vision bins (whole images, see
`policy.vision`) split over the patch axes, each chip attending within the bins it holds (no keys
gathered); patch axes the bins do not divide split the queries of every bin instead, with that bin's
keys all-gathered.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as splash_mask

from policy.config import ATTENTION_IMPLS
from policy.sharding import logical_to_spec

IMPLEMENTATIONS = ATTENTION_IMPLS
MASKED_SCORE = -1e30  # finite "minus infinity": fully masked rows give uniform weights, not NaN
_LANES = 128  # splash block sizes are multiples of this
_VISION_QUERY_BLOCK = 512  # reference vision path: queries per block


def _ambient_mesh():
    mesh = jax.sharding.get_abstract_mesh()
    return None if mesh is None or mesh.empty else mesh


def target_platform() -> str:
    """'tpu', 'gpu' or 'cpu': where the program being traced will run."""
    mesh = _ambient_mesh()
    device = getattr(mesh, "abstract_device", None) if mesh is not None else None
    platform = getattr(device, "platform", None) or jax.default_backend()
    return {"cuda": "gpu", "rocm": "gpu"}.get(platform, platform)


def resolve(impl: str) -> str:
    """The concrete implementation "auto" stands for on the target platform."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"attention_impl={impl!r}; expected one of {IMPLEMENTATIONS}")
    if impl != "auto":
        return impl
    return {"tpu": "splash", "gpu": "cudnn"}.get(target_platform(), "reference")


# ---------------------------------------------------------------------------------------------
# Text: causal self-attention over a padded batch
# ---------------------------------------------------------------------------------------------
def masked_attention(q, k, v, mask, scale: float):
    """Reference GQA attention with an explicit mask: q [B,T,H,D], k/v [B,S,K,D], mask [B,T,S] bool.

    Scores and softmax in float32; a fully masked query row averages every value (finite, unused).
    """
    B, T, H, D = q.shape
    K = k.shape[2]
    qg = q.reshape(B, T, K, H // K, D)
    scores = jnp.einsum("btkgd,bskd->bkgts", qg, k.astype(q.dtype), preferred_element_type=jnp.float32) * scale
    scores = jnp.where(mask[:, None, None, :, :], scores, MASKED_SCORE)
    probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
    return jnp.einsum("bkgts,bskd->btkgd", probs, v.astype(q.dtype)).reshape(B, T, H, D)


def causal_attention(q, k, v, attention_mask, *, scale: float, impl: str = "auto"):
    """Causal self-attention of whole sequences (prefill, training).

    q [B,T,H,D]; k, v [B,T,K,D] with H % K == 0 (GQA); attention_mask [B,T] (nonzero = real token).
    A real query attends to the real keys at or before it, whatever the padding pattern. Outputs at
    pad positions are finite and meaningless. Returns [B,T,H,D] in q.dtype.
    """
    if q.shape[2] % k.shape[2]:
        raise ValueError(f"{q.shape[2]} query heads are not a multiple of {k.shape[2]} key/value heads")
    real = attention_mask.astype(bool)
    impl = resolve(impl)
    if impl == "reference":
        T = q.shape[1]
        causal = jnp.arange(T)[None, :] <= jnp.arange(T)[:, None]
        return masked_attention(q, k, v, causal[None] & real[:, None, :], scale)
    if impl in ("cudnn", "xla"):
        return _dot_product_causal(q, k, v, real, scale, impl)
    return _sharded(_splash_causal, (q, k, v, real.astype(jnp.int32)),
                    (("batch", None, "act_heads", None), ("batch", None, "act_kv_heads", None),
                     ("batch", None, "act_kv_heads", None), ("batch", None)), scale=scale)


def _dot_product_causal(q, k, v, real, scale, impl):
    """jax.nn.dot_product_attention on rows whose real tokens were moved to the front (order kept)."""
    order = jnp.argsort(~real, axis=1, stable=True)  # real tokens first, each group in position order
    inverse = jnp.argsort(order, axis=1)
    def take(x, idx):
        return jnp.take_along_axis(x, idx[:, :, None, None], axis=1)

    lengths = jnp.maximum(real.sum(axis=1), 1).astype(jnp.int32)  # an all-pad row still sees one key
    out = jax.nn.dot_product_attention(take(q, order), take(k, order).astype(q.dtype), take(v, order).astype(q.dtype),
                                       scale=scale, is_causal=True, key_value_seq_lengths=lengths,
                                       implementation=impl)
    return take(out, inverse)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _block_sizes(q_len: int, kv_len: int) -> splash.BlockSizes:
    """Largest of 512/256/128 dividing each (already 128-aligned) length, forward and backward."""
    bq = next(b for b in (512, 256, _LANES) if q_len % b == 0)
    bkv = next(b for b in (512, 256, _LANES) if kv_len % b == 0)
    return splash.BlockSizes(block_q=bq, block_kv=bkv, block_kv_compute=bkv, block_q_dkv=bq, block_kv_dkv=bkv,
                             block_kv_dkv_compute=bkv, block_q_dq=bq, block_kv_dq=bkv)


# Matrix products of one splash kernel per (query, key) pair and head dimension, 2 FLOPs a multiply-add:
# forward Q K^T and P V; dq recomputes Q K^T, then dO V^T and dS K; dkv recomputes Q K^T, then dO V^T,
# P^T dO and dS^T Q.
_SPLASH_MATMULS = {"fwd": 2, "dq": 3, "dkv": 4}


def splash_kernel_flops(kernel_name: str, q_shape, k_shape) -> float:
    """FLOPs of one splash Pallas call, which XLA's cost analysis leaves out (a custom call).

    `kernel_name` is the compiled call's name (`splash_{mha,mqa}_{fwd,dq,dkv}...`), q_shape
    [..., Tq, D] with every leading dimension an independent (row, head) instance, k_shape [..., Tkv, D].
    Splash skips only the blocks its static mask rules out: in this module the mqa kernel is the causal
    text attention (blocks on and below the diagonal) and the mha kernel the vision attention
    (`FullMask`: every block of a vision bin, whatever the segment ids).
    """
    parts = kernel_name.split("_")
    if len(parts) < 3 or parts[0] != "splash" or parts[1] not in ("mha", "mqa") or parts[2] not in _SPLASH_MATMULS:
        raise ValueError(f"not a splash kernel name: {kernel_name!r}")
    *lead, q_len, head_dim = (int(d) for d in q_shape)
    kv_len = int(k_shape[-2])
    density = 1.0
    if parts[1] == "mqa":
        blocks = kv_len // _block_sizes(_round_up(q_len, _LANES), _round_up(kv_len, _LANES)).block_kv
        density = (blocks + 1) / (2 * blocks) if blocks else 1.0
    instances = 1
    for d in lead:
        instances *= d
    return 2.0 * _SPLASH_MATMULS[parts[2]] * instances * q_len * kv_len * head_dim * density


def _splash_kernel(q_len: int, kv_len: int, heads: int, causal: bool, mqa: bool, interpret: bool):
    one = splash_mask.CausalMask((q_len, kv_len)) if causal else splash_mask.FullMask((q_len, kv_len))
    make = splash.make_splash_mqa_single_device if mqa else splash.make_splash_mha_single_device
    return make(splash_mask.MultiHeadMask([one] * heads), block_sizes=_block_sizes(q_len, kv_len),
                interpret=interpret)


def _pad_axis(x, axis: int, size: int, fill=0):
    if x.shape[axis] == size:
        return x
    width = [(0, 0)] * x.ndim
    width[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, width, constant_values=fill)


def _splash_causal(q, k, v, segments, *, scale):
    """Splash on one shard: padding is segment 0, real tokens segment 1, plus the causal mask."""
    B, T, H, D = q.shape
    K = k.shape[2]
    Tp = _round_up(T, _LANES)
    q, k, v = (_pad_axis(x, 1, Tp) for x in (q, k, v))
    segments = _pad_axis(segments, 1, Tp)
    qg = (q * jnp.asarray(scale, q.dtype)).reshape(B, Tp, K, H // K, D).transpose(0, 2, 3, 1, 4)  # [B,K,G,T,D]
    kernel = _splash_kernel(Tp, Tp, H // K, True, True, target_platform() != "tpu")
    per_head = jax.vmap(lambda q, k, v, s: kernel(q, k, v, segment_ids=s), in_axes=(0, 0, 0, None))
    out = jax.vmap(per_head)(qg, k.astype(q.dtype).transpose(0, 2, 1, 3), v.astype(q.dtype).transpose(0, 2, 1, 3),
                             splash.SegmentIds(q=segments, kv=segments))
    return out.transpose(0, 3, 1, 2, 4).reshape(B, Tp, H, D)[:, :T]


# ---------------------------------------------------------------------------------------------
# Vision: bidirectional attention restricted to each image
# ---------------------------------------------------------------------------------------------
def segment_attention(q, k, v, segment_ids, *, scale: float, impl: str = "auto"):
    """Each patch attends to the patches of its own image inside its bin: q, k, v [G,L,H,D] (G bins of
    L patches), segment_ids [G,L] int (-1: padding).

    Work per bin, batched over bins (FLOPs G * L^2, linear in the bins): splash with segment ids, or
    query blocks against the bin's keys. Returns [G,L,H,D] in q.dtype.
    """
    impl = resolve(impl)
    segment_ids = segment_ids.astype(jnp.int32)
    if impl == "splash":  # bins over the patch axes; axes left over (bins not dividing them) split each bin
        names = ("patches", "patches", "act_vision_heads", None)
        return _sharded(_splash_bins, (q, k, v, segment_ids), (names, names, names, ("patches", "patches")),
                        scale=scale, gather_axis=1)
    return jax.vmap(functools.partial(_blockwise_segments, scale=scale))(q, k, v, segment_ids)


def _blockwise_segments(q, k, v, segment_ids, scale, block: int = _VISION_QUERY_BLOCK):
    """One bin: query blocks in a loop, each against every key with its segment mask: memory O(block * L)."""
    N, H, D = q.shape
    block = min(block, N)
    Np = _round_up(N, block)
    qs = _pad_axis(q, 0, Np).reshape(Np // block, block, H, D)
    seg_q = _pad_axis(segment_ids, 0, Np, fill=-2).reshape(Np // block, block)

    def one(args):
        qb, sb = args
        scores = jnp.einsum("qhd,khd->hqk", qb, k.astype(q.dtype), preferred_element_type=jnp.float32) * scale
        scores = jnp.where((sb[:, None] == segment_ids[None, :])[None], scores, MASKED_SCORE)
        probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
        return jnp.einsum("hqk,khd->qhd", probs, v.astype(q.dtype))

    return jax.lax.map(one, (qs, seg_q)).reshape(Np, H, D)[:N]


def _splash_bins(q, k, v, segment_ids, *, scale, key_segment_ids=None):
    """Splash on one shard's bins: queries [g,Lq,H,D] against their bins' (possibly gathered) keys
    [g,L,H,D], one kernel call per bin (vmapped: the bins become the kernel's grid)."""
    kv_seg = segment_ids if key_segment_ids is None else key_segment_ids
    return jax.vmap(functools.partial(_splash_segments, scale=scale))(q, k, v, segment_ids, kv_seg)


def _splash_segments(q, k, v, segment_ids, key_segment_ids, *, scale):
    """Splash on one bin: queries [Lq,H,D] against the bin's keys [L,H,D], one segment per image."""
    N, H, D = q.shape
    S = k.shape[0]
    Np, Sp = _round_up(N, _LANES), _round_up(S, _LANES)
    pad_id = -2  # alignment padding: its own segment, so every padded query has keys to attend to
    q = _pad_axis(q * jnp.asarray(scale, q.dtype), 0, Np).transpose(1, 0, 2)
    k, v = (_pad_axis(x.astype(q.dtype), 0, Sp).transpose(1, 0, 2) for x in (k, v))
    segs = splash.SegmentIds(q=_pad_axis(segment_ids, 0, Np, fill=pad_id),
                             kv=_pad_axis(key_segment_ids, 0, Sp, fill=pad_id))
    kernel = _splash_kernel(Np, Sp, H, False, False, target_platform() != "tpu")
    return kernel(q, k, v, segment_ids=segs).transpose(1, 0, 2)[:N]


# ---------------------------------------------------------------------------------------------
# shard_map over the ambient mesh
# ---------------------------------------------------------------------------------------------
def _sharded(fn, args, in_names, *, gather_axis: int | None = None, **kw):
    """Run `fn(*args, **kw)` per shard of the ambient mesh (directly when there is none).

    Dimensions split as `policy.sharding` maps their logical names (dropped where they do not divide);
    query and key/value heads keep one split so each shard holds whole GQA groups. Where `gather_axis`
    (vision: the patches inside a bin) is split, keys, values and their segment ids are all-gathered
    along it inside, so each shard's queries see their whole bin.
    """
    mesh = _ambient_mesh()
    if mesh is None or mesh.size == 1:
        return fn(*args, **kw)
    specs = [list(logical_to_spec(n, a.shape, mesh)) for n, a in zip(in_names, args)]
    if specs[0][2] != specs[1][2]:  # [B,T,H,D] / [G,L,H,D]: heads split alike or not at all
        for s in specs[:3]:
            s[2] = None
    out_spec = jax.sharding.PartitionSpec(*specs[0])
    specs = [jax.sharding.PartitionSpec(*s) for s in specs]
    body = functools.partial(fn, **kw)
    axes = None if gather_axis is None else specs[0][gather_axis]
    if axes is not None:
        axes = (axes,) if isinstance(axes, str) else tuple(axes)

        def body(q, k, v, seg):
            k, v, kv_seg = (jax.lax.all_gather(x, axes, axis=gather_axis, tiled=True) for x in (k, v, seg))
            return fn(q, k, v, seg, key_segment_ids=kv_seg, **kw)
    return jax.shard_map(body, mesh=mesh, in_specs=tuple(specs), out_specs=out_spec, check_vma=False)(*args)
