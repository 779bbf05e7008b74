"""policy.attention: splash (Pallas interpret mode), the cuDNN call shape (XLA stand-in) and the reference
einsums agree with a numpy oracle in float32, for text (causal, GQA, left/right padding) and vision
(bins of whole images, one segment per image, images of different sizes, bucket padding); sharded runs equal unsharded
ones; the vision program's temporary memory grows linearly with the number of images.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from policy import attention
from policy.config import Qwen3VLConfig
from policy.model import init_model
from policy.sharding import make_mesh
from policy.vision import VisionInputs, vision_metadata

TOL = 1e-5
TEXT_IMPLS = ("reference", "xla", "splash")
VISION_IMPLS = ("reference", "splash")


def _softmax_attend(q, k, v, visible, scale):
    """numpy float64 oracle: q [T,H,D], k/v [S,H,D], visible [T,S] -> [T,H,D]."""
    s = np.einsum("thd,shd->hts", q, k) * scale
    s = np.where(visible[None], s, -1e30)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("hts,shd->thd", p, v)


def _text_case(seed=0, B=3, T=37, H=4, K=2, D=8):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((B, T, n, D)).astype(np.float32) for n in (H, K, K))
    mask = np.ones((B, T), np.int32)
    mask[0, :9] = 0  # left padding
    mask[1, :4] = 0  # left-padded prompt + right-padded completion
    mask[1, -6:] = 0
    return q, k, v, mask


def _text_oracle(q, k, v, mask, scale):
    B, T, H, _ = q.shape
    rep = H // k.shape[2]
    out = np.zeros(q.shape, np.float64)
    for b in range(B):
        visible = np.tril(np.ones((T, T), bool)) & mask[b].astype(bool)[None, :]
        real = mask[b].astype(bool)
        attended = _softmax_attend(q[b].astype(np.float64), np.repeat(k[b], rep, 1).astype(np.float64),
                                   np.repeat(v[b], rep, 1).astype(np.float64), visible, scale)
        out[b, real] = attended[real]
    return out


@pytest.mark.parametrize("impl", TEXT_IMPLS)
def test_causal_attention_matches_oracle_with_padding_and_gqa(impl):
    q, k, v, mask = _text_case()
    scale = q.shape[-1] ** -0.5
    out = jax.jit(lambda *a: attention.causal_attention(*a, scale=scale, impl=impl))(q, k, v, mask)
    out = np.asarray(out)
    assert np.isfinite(out).all()  # pad positions too: their keys/values feed later layers
    real = mask.astype(bool)
    np.testing.assert_allclose(out[real], _text_oracle(q, k, v, mask, scale)[real], atol=TOL, rtol=0)


@pytest.mark.parametrize("impl", ("xla", "splash"))
def test_causal_attention_gradients_match_reference(impl):
    """Training differentiates through the kernel: d(loss)/d(q, k, v) as the reference path."""
    q, k, v, mask = _text_case(seed=1, T=20)
    w = np.random.default_rng(2).standard_normal(q.shape).astype(np.float32) * mask[:, :, None, None]

    def loss(q, k, v, which):
        return jnp.sum(attention.causal_attention(q, k, v, mask, scale=0.3, impl=which) * w)

    got = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(q, k, v, impl)
    want = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(q, k, v, "reference")
    for g, r in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=TOL, rtol=0)


def _vision_case(seed=0, H=2, D=8):
    """Two bins of 40 patches as `vision_metadata` lays them out: images of 16 and 24 patches share the
    first, one of 36 plus bucket padding (segment -1) fills the second."""
    seg = np.stack([np.repeat([0, 1], [16, 24]), np.repeat([2, -1], [36, 4])]).astype(np.int32)
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(seg.shape + (H, D)).astype(np.float32) for _ in range(3))
    return q, k, v, seg


def _vision_oracle(q, k, v, seg, scale):
    out = np.stack([_softmax_attend(*(x[b].astype(np.float64) for x in (q, k, v)), seg[b][:, None] == seg[b][None, :],
                                    scale) for b in range(len(seg))])
    return out, seg >= 0


@pytest.mark.parametrize("impl", VISION_IMPLS)
def test_segment_attention_matches_oracle_for_images_of_different_sizes(impl):
    q, k, v, seg = _vision_case()
    want, real = _vision_oracle(q, k, v, seg, 0.35)
    fn = functools.partial(attention.segment_attention, scale=0.35, impl=impl)
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(q, k, v, seg))[real], want[real], atol=TOL, rtol=0)


def test_blockwise_segments_spans_query_blocks():
    """Query blocks smaller than an image and not dividing the bin give the same answer."""
    q, k, v, seg = _vision_case(seed=3)
    want, real = _vision_oracle(q, k, v, seg, 0.35)
    got = jax.jit(lambda *a: attention._blockwise_segments(*a, 0.35, block=32))(q[0], k[0], v[0], seg[0])
    np.testing.assert_allclose(np.asarray(got)[real[0]], want[0][real[0]], atol=TOL, rtol=0)


@pytest.mark.parametrize("bins", [2, 3])
def test_splash_under_a_mesh_equals_unsharded(bins):
    """shard_map path: text batch and vision bins split over 8 devices (2 x 4): 8 bins (whole bins per
    device, no keys gathered) or 6 bins (bins over the 2, each bin's queries over the 4, keys gathered)."""
    mesh = make_mesh((2, 4, 1))
    q, k, v, mask = _text_case(seed=4, B=8, T=12)
    qv, kv, vv, seg = (np.concatenate([x] * bins * 2) for x in _vision_case(seed=5))
    text = functools.partial(attention.causal_attention, scale=0.3, impl="splash")
    vision = functools.partial(attention.segment_attention, scale=0.3, impl="splash")
    want_text, want_vision = jax.jit(text)(q, k, v, mask), jax.jit(vision)(qv, kv, vv, seg)
    with jax.set_mesh(mesh):
        got_text, got_vision = jax.jit(text)(q, k, v, mask), jax.jit(vision)(qv, kv, vv, seg)
    real = mask.astype(bool)
    np.testing.assert_allclose(np.asarray(got_text)[real], np.asarray(want_text)[real], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(got_vision)[seg >= 0], np.asarray(want_vision)[seg >= 0], atol=1e-6,
                               rtol=0)


def test_resolve_picks_reference_on_cpu_and_rejects_unknown_names():
    assert attention.resolve("auto") == "reference"
    assert attention.resolve("splash") == "splash"
    with pytest.raises(ValueError, match="attention_impl"):
        attention.resolve("flash")
    with pytest.raises(ValueError, match="attention_impl"):
        Qwen3VLConfig.tiny(attention_impl="flash")


def _vision_temp_bytes(images: int, side: int = 16) -> int:
    config = Qwen3VLConfig.tiny(attention_impl="reference")
    graphdef, state = nnx.split(init_model(config))
    meta = VisionInputs(*(jnp.asarray(x) for x in vision_metadata(np.tile([1, side, side], (images, 1)), config)))
    pixels = jax.ShapeDtypeStruct((len(meta.segment_ids), config.vision.patch_dim), jnp.float32)
    encode = jax.jit(lambda st, pv, m: nnx.merge(graphdef, st).encode_images(pv, m))
    return encode.lower(state, pixels, meta).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.slow
def test_vision_temporary_memory_grows_linearly_with_images():
    """Twice the images (256 patches each; 512-query blocks) -> about twice the temporary bytes, not four."""
    two, four = _vision_temp_bytes(2), _vision_temp_bytes(4)
    assert 1.5 <= four / two <= 2.5, (two, four)
