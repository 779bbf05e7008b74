"""`policy.decode_attention`: the flash-decoding kernel (Pallas interpret mode) against einsums, alone, on
a stacked cache, over a mesh, inside the sampler (greedy tokens equal transformers' `generate`), and compiled for a TPU
(deviceless: fewer HBM bytes than the einsum path)."""
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policy import aot
from policy.attention import MASKED_SCORE
from policy.config import Qwen3VLConfig
from policy.decode_attention import Part, attend_part, join
from policy.hf_io import load_pretrained
from policy.model import abstract_model
from policy.sampling import SamplingParams
from policy.sharding import make_mesh
from tests.policy import hf_fixtures as F
from tests.policy.test_sampler import NEW, _gen, _hf_generate, _sampler, sampler_batch

SCALE = 0.125


def einsum_part(q, k, v, keep, limit) -> Part:
    s = jnp.einsum("xkmd,xksd->xkms", q, k, precision="highest") * SCALE
    kept = keep[:, None, None, :] & (jnp.arange(k.shape[2]) < limit)
    s = jnp.where(kept, s, MASKED_SCORE)
    top = s.max(-1)
    e = jnp.where(kept, jnp.exp(s - top[..., None]), 0.0)
    return Part(jnp.einsum("xkms,xksd->xkmd", e, v, precision="highest"), top, e.sum(-1))


def _arrays(X=3, K=2, m=4, S=384, D=64, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((X, K, m, D), (X, K, S, D), (X, K, S, D)))
    keep = jnp.asarray(rng.random((X, S)) > 0.3)
    return q, k, v, keep


def _close(got: Part, want: Part, rows=slice(None)):
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a)[rows], np.asarray(b)[rows], rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("limit", [384, 300, 129, 1])
def test_masked_part_equals_einsums(limit):
    """A kept-slot mask and a limit ending inside, at the edge of and before the blocks (128 slots)."""
    q, k, v, keep = _arrays()
    _close(attend_part(q, k, v, scale=SCALE, keep=keep, limit=jnp.int32(limit)), einsum_part(q, k, v, keep, limit))


def test_nothing_kept_has_no_weight():
    """limit 0 (a stacked cache's first step): no slot, so total 0 and the top at MASKED_SCORE; joined with
    another part it contributes nothing."""
    q, k, v, keep = _arrays()
    part = attend_part(q, k, v, scale=SCALE, limit=jnp.int32(0))
    assert np.all(np.asarray(part.total) == 0) and np.all(np.asarray(part.top) == MASKED_SCORE)
    other = einsum_part(q, k, v, keep, 384)
    np.testing.assert_allclose(join([part, other]), join([other]), rtol=1e-6)


def test_stacked_layer_and_unaligned_cache():
    """Layer 2 of a stacked [L,X,K,S,D] cache read in place; a 200-slot cache padded to whole blocks."""
    q, k, v, keep = _arrays(S=200)
    stack = [jnp.stack([x * (i + 1) for i in range(4)]) for x in (k, v)]
    got = attend_part(q, *stack, scale=SCALE, keep=keep, layer=jnp.int32(2))
    _close(got, einsum_part(q, k * 3, v * 3, keep, 200))


def test_join_equals_softmax_over_all_slots():
    q, k, v, keep = _arrays()
    a = attend_part(q, k[:, :, :256], v[:, :, :256], scale=SCALE, keep=keep[:, :256])
    b = attend_part(q, k[:, :, 256:], v[:, :, 256:], scale=SCALE, keep=keep[:, 256:])
    whole = einsum_part(q, k, v, keep, 384)
    np.testing.assert_allclose(join([a, b]), whole.out / whole.total[..., None], rtol=2e-5, atol=2e-5)


def test_on_a_mesh_each_shard_reads_its_rows_and_heads():
    """Under a (1, 2, 4) mesh rows split over fsdp and key/value heads over tensor (shard_map)."""
    q, k, v, keep = _arrays(X=4, K=4)
    mesh = make_mesh((1, 2, 4))
    with jax.set_mesh(mesh):
        got = jax.jit(lambda *a: attend_part(*a[:3], scale=SCALE, keep=a[3], limit=jnp.int32(300)))(q, k, v, keep)
    _close(got, einsum_part(q, k, v, keep, 300))


@pytest.fixture(scope="module")
def kernel_models(tmp_path_factory):
    path = tmp_path_factory.mktemp("decode_kernel_hf")
    hf = F.save_hf_model("gqa_untied", path)
    return hf, {scan: load_pretrained(path, scan_layers=scan, attention_impl="splash")[1] for scan in (False, True)}


@pytest.mark.parametrize("scanned", [False, True], ids=["unscanned", "scanned"])
def test_sampler_with_kernel_matches_transformers_generate(kernel_models, scanned):
    """The sampler on the kernel path ("splash": prefill and decode in interpret mode), two decode phases,
    G=2 samples a prompt: greedy tokens equal HF's (so both samples of a prompt too)."""
    hf, models = kernel_models
    b = sampler_batch()
    want = _hf_generate(hf, b)
    out = _gen(_sampler(models[scanned], decode_buckets=(8,)), b, max_new_tokens=NEW, num_samples=2)
    np.testing.assert_array_equal(out.tokens[::2], want)
    np.testing.assert_array_equal(out.tokens[1::2], want)



needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None, reason="libtpu is not installed")


@needs_libtpu
def test_compiled_for_tpu_the_decode_loop_reads_less_with_the_kernel():
    """The sampler's decode program for v5p-8 (deviceless; 2 prompts x 8 samples, scanned layers): Mosaic
    lowers the kernel, and its HBM bytes (policy.hlo_cost, as `launch.aot` counts them) fall below the
    einsum path's, whose float32 scores go through HBM."""
    mesh = aot.topology_mesh(aot.topology("v5p-8"), ())
    params = SamplingParams(temperature=1.0)
    reports = {}
    for impl in ("splash", "reference"):
        config = Qwen3VLConfig.tiny(attention_impl=impl, scan_layers=True, dtype="bfloat16", param_dtype="bfloat16")
        decode = aot.sampler_programs("policy", abstract_model(config), mesh, batch=2, prompt_len=1024,
                                      num_patches=None, num_samples=8, max_new=256, params=params, stop_ids=(),
                                      pad_id=0)[-1]
        reports[impl] = aot.compile_program(decode, mesh)
        assert reports[impl].error is None, reports[impl].error
    assert reports["splash"].bytes_accessed < 0.9 * reports["reference"].bytes_accessed
