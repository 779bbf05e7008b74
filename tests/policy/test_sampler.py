"""`policy.Sampler`: greedy parity with transformers' `generate`, log-probs vs a teacher-forced pass,
reproducible sampling, G samples per prompt, and the pure logit processors on hand-worked examples."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from policy import tiny_checkpoint
from policy.config import Qwen3VLConfig
from policy.hf_io import load_pretrained
from policy.model import forward_logits, init_model
from policy.sampler import Sampler
from policy.sampling import (SamplingParams, apply_penalties, min_p_filter, process_logits, sample_tokens,
                             top_k_filter, top_p_filter)
from policy.sharding import make_mesh, shard_model
from tests.multihost import run_one_process, run_two_processes
from tests.policy import hf_fixtures as F

PAD = 0
NEW = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("sampler_hf")
    hf = F.save_hf_model("gqa_untied", path)
    _, model = load_pretrained(path)
    rng = np.random.default_rng(11)
    grids = [[1, 4, 4], [1, 4, 6], [1, 4, 4]]
    pv, grid = F.pixel_inputs(grids, seed=11)
    sizes = np.prod(grid, 1)
    patches = np.split(pv, np.cumsum(sizes)[:-1])
    row_images = [[0], [], [1, 2]]  # which images each prompt holds, in order
    rows = [F.text_tokens(rng, 2) + F.image_span(grid[0]) + F.text_tokens(rng, 3),
            F.text_tokens(rng, 17),
            F.text_tokens(rng, 1) + F.image_span(grid[1]) + F.text_tokens(rng, 1) + F.image_span(grid[2])
            + F.text_tokens(rng, 2)]
    ids, mask = F.left_pad(rows, PAD)
    assert (mask == 0).any(axis=1).sum() == 2
    batch = dict(ids=ids, mask=mask, pv=pv, grid=grid, patches=patches, row_images=row_images)
    return hf, model, batch


def _hf_generate(hf, b, eos=None):
    from transformers import GenerationConfig

    gc = GenerationConfig(do_sample=False, max_new_tokens=NEW, eos_token_id=eos, pad_token_id=PAD,
                          use_cache=True)
    with torch.no_grad():
        out = hf.generate(input_ids=torch.as_tensor(b["ids"]), attention_mask=torch.as_tensor(b["mask"]),
                          pixel_values=torch.as_tensor(b["pv"]), image_grid_thw=torch.as_tensor(b["grid"]),
                          mm_token_type_ids=torch.as_tensor((b["ids"] == F.IMG).astype(np.int64)),
                          generation_config=gc)
    return out[:, b["ids"].shape[1]:].numpy()


def _sampler(model, **kw):
    # Buckets bigger than the batch on purpose: extra left padding, an extra (inactive) prompt row
    # and extra zero patches must not change anything.
    kw = dict(dict(pad_id=PAD, prompt_buckets=(48, 64), patch_buckets=(64, 128), batch_buckets=(4,)), **kw)
    return Sampler(model, **kw)


def _gen(sampler, b, **kw):
    return sampler.generate(b["ids"], b["mask"], b["pv"], b["grid"], **kw)


def test_greedy_matches_transformers_generate(setup):
    hf, model, b = setup
    want = _hf_generate(hf, b)
    assert want.shape == (3, NEW)
    out = _gen(_sampler(model), b, max_new_tokens=NEW)
    print("[sampler] HF greedy tokens row0:", want[0].tolist())
    np.testing.assert_array_equal(out.tokens, want)
    assert out.lengths.tolist() == [NEW] * 3 and not out.stopped.any()
    assert out.prompt_index.tolist() == [0, 1, 2]
    assert np.all(out.sample_logprobs == 0) and np.all(out.logprobs < 0)


def test_greedy_stop_token_matches_transformers(setup):
    """A stop token hit mid-way by one row: that row pads afterwards, the others carry on, same as HF."""
    hf, model, b = setup
    free = _hf_generate(hf, b)
    # first token of row 1 (after step 4) that rows 0 and 2 do not emit before step 20: ends row 1 early
    stop = next(int(t) for t in free[1, 4:] if t not in free[0, :20] and t not in free[2, :20])
    want = _hf_generate(hf, b, eos=stop)
    out = _gen(_sampler(model, stop_ids=(stop,)), b, max_new_tokens=NEW)
    got = out.tokens[:, : want.shape[1]]
    np.testing.assert_array_equal(got, want)
    assert np.all(out.tokens[:, want.shape[1]:] == PAD)
    for r in range(3):
        hits = np.flatnonzero(out.tokens[r] == stop)
        n = hits[0] + 1 if hits.size else NEW
        assert out.lengths[r] == n and out.stopped[r] == bool(hits.size)
        assert np.all(out.tokens[r, n:] == PAD) and np.all(out.logprobs[r, n:] == 0)
    assert out.stopped[1] and out.lengths[1] < NEW


def _teacher_forced_logprobs(model, b, out, G):
    """log_softmax of a full forward over prompt + generated tokens, at the generated tokens."""
    rep = np.repeat(np.arange(3), G)
    ids = np.concatenate([b["ids"][rep], out.tokens], 1)
    gen_mask = (np.arange(NEW)[None] < out.lengths[:, None]).astype(np.int64)
    mask = np.concatenate([b["mask"][rep], gen_mask], 1)
    imgs = [i for r in rep for i in b["row_images"][r]]
    pv = np.concatenate([b["patches"][i] for i in imgs])
    logits = forward_logits(model, ids, mask, pv, b["grid"][imgs])
    T = b["ids"].shape[1]
    lsm = jax.nn.log_softmax(jnp.asarray(logits[:, T - 1:T - 1 + NEW]), axis=-1)
    lp = np.take_along_axis(np.asarray(lsm), out.tokens[..., None], -1)[..., 0]
    return np.where(gen_mask > 0, lp, 0.0)


def test_sampling_reproducible_logprobs_match_teacher_forcing_and_samples_differ(setup):
    _, model, b = setup
    G = 2
    params = SamplingParams(temperature=0.9, top_k=40, top_p=0.95, repetition_penalty=1.1, presence_penalty=0.2,
                            suppress_ids=(F.IMG, F.VID, F.VSTART, F.VEND))  # teacher forcing reads them as vision
    s = _sampler(model, stop_ids=(5,))
    a = _gen(s, b, max_new_tokens=NEW, num_samples=G, rng=jax.random.key(3), params=params)
    again = _gen(s, b, max_new_tokens=NEW, num_samples=G, rng=jax.random.key(3), params=params)
    other = _gen(s, b, max_new_tokens=NEW, num_samples=G, rng=jax.random.key(4), params=params)
    np.testing.assert_array_equal(a.tokens, again.tokens)
    np.testing.assert_array_equal(a.logprobs, again.logprobs)
    assert not np.array_equal(a.tokens, other.tokens)
    assert a.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
    for p in range(3):  # the G samples of one prompt differ
        assert not np.array_equal(a.tokens[2 * p], a.tokens[2 * p + 1])
    want = _teacher_forced_logprobs(model, b, a, G)
    diff = float(np.max(np.abs(a.logprobs - want)))
    print(f"[sampler] max |logprob - teacher-forced| = {diff:.2e}")
    assert diff <= 1e-4
    # sampling-distribution log-probs: finite for real tokens, and sharper than the raw ones on average
    real = np.arange(NEW)[None] < a.lengths[:, None]
    assert np.all(np.isfinite(a.sample_logprobs[real])) and np.all(a.sample_logprobs[~real] == 0)


def test_greedy_samples_of_one_prompt_are_identical(setup):
    _, model, b = setup
    out = _gen(_sampler(model), b, max_new_tokens=8, num_samples=2)
    assert out.tokens.shape == (6, 8)
    for p in range(3):
        np.testing.assert_array_equal(out.tokens[2 * p], out.tokens[2 * p + 1])
        np.testing.assert_array_equal(out.logprobs[2 * p], out.logprobs[2 * p + 1])


def test_sharded_text_only_matches_single_device():
    cfg = Qwen3VLConfig.tiny()
    ids = np.array([[0, 0, 0, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8]])
    mask = (np.arange(8)[None] >= np.array([[3], [0]])).astype(np.int32)
    params = SamplingParams(temperature=1.0, top_k=8)
    ref = Sampler(init_model(cfg), pad_id=0, prompt_buckets=None).generate(
        ids, mask, max_new_tokens=6, num_samples=2, rng=7, params=params)
    mesh = make_mesh((1, 2, 4))
    sharded = Sampler(shard_model(init_model(cfg), mesh), pad_id=0, prompt_buckets=None, mesh=mesh).generate(
        ids, mask, max_new_tokens=6, num_samples=2, rng=7, params=params)
    np.testing.assert_array_equal(sharded.tokens, ref.tokens)
    np.testing.assert_allclose(sharded.logprobs, ref.logprobs, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Pure processors on hand-computed examples
# ------------------------------------------------------------------------------------------------
def _kept(x):
    return np.isfinite(np.asarray(x)).tolist()


def test_top_k_keeps_ties_and_top_p_matches_hand_cumsums():
    x = jnp.array([[1.0, 3.0, 2.0, 3.0, 0.0]])
    assert _kept(top_k_filter(x, 2)) == [[False, True, False, True, False]]
    assert _kept(top_k_filter(x, 3)) == [[False, True, True, True, False]]
    assert _kept(top_k_filter(x, 0)) == [[True] * 5]
    probs = jnp.log(jnp.array([[0.05, 0.5, 0.15, 0.3]]))  # descending: .5 .3 .15 .05
    # mass strictly ahead of each token (descending): .5 -> 0, .3 -> .5, .15 -> .8, .05 -> .95
    assert _kept(top_p_filter(probs, 0.4)) == [[False, True, False, False]]
    assert _kept(top_p_filter(probs, 0.7)) == [[False, True, False, True]]
    assert _kept(top_p_filter(probs, 0.9)) == [[False, True, True, True]]
    assert _kept(top_p_filter(probs, 0.97)) == [[True, True, True, True]]
    # after top-k=2 the renormalised mass is .5/.8=.625, .3/.8=.375: p=.6 keeps only the first
    both = top_p_filter(top_k_filter(probs, 2), 0.6, top_k=2)
    assert _kept(both) == [[False, True, False, False]]
    assert _kept(top_p_filter(top_k_filter(probs, 2), 0.7, top_k=2)) == [[False, True, False, True]]
    np.testing.assert_allclose(np.asarray(top_p_filter(probs, 0.9))[0, 1:], np.asarray(probs)[0, 1:])


def test_min_p_and_penalties_by_hand():
    probs = jnp.log(jnp.array([[0.6, 0.25, 0.1, 0.05]]))
    # min_p=0.2 -> threshold 0.12: keep .6 and .25
    assert _kept(min_p_filter(probs, 0.2)) == [[True, True, False, False]]
    assert _kept(min_p_filter(probs, 0.0)) == [[True] * 4]
    x = jnp.array([[2.0, -1.0, 0.5, -3.0]])
    seen = jnp.array([[True, True, False, False]])
    gen = jnp.array([[False, True, True, False]])
    np.testing.assert_allclose(np.asarray(apply_penalties(x, seen, None, 2.0)), [[1.0, -2.0, 0.5, -3.0]])
    np.testing.assert_allclose(np.asarray(apply_penalties(x, None, gen, 1.0, 0.5)), [[2.0, -1.5, 0.0, -3.0]])
    np.testing.assert_allclose(np.asarray(apply_penalties(x, seen, gen, 2.0, 0.5)), [[1.0, -2.5, 0.0, -3.0]])
    # full pipeline: penalties, then temperature, then filters; greedy skips temperature and filters
    p = SamplingParams(temperature=0.5, top_k=2, repetition_penalty=2.0)
    np.testing.assert_allclose(np.asarray(process_logits(x, p, seen, gen)), [[2.0, -np.inf, 1.0, -np.inf]])
    g = SamplingParams(temperature=0.0, top_k=1, repetition_penalty=2.0)
    np.testing.assert_allclose(np.asarray(process_logits(x, g, seen, gen)), [[1.0, -2.0, 0.5, -3.0]])
    s = SamplingParams(temperature=0.0, suppress_ids=[0])
    np.testing.assert_allclose(np.asarray(process_logits(x, s)), [[-np.inf, -1.0, 0.5, -3.0]])
    with pytest.raises(ValueError):
        SamplingParams(top_p=0.0)


@pytest.mark.slow
def test_two_jax_distributed_processes_sample_what_one_process_samples(tmp_path):
    """Each of two processes (4 CPU devices each) feeds its own prompts and images and gets back its own
    rows: together the same tokens and log-probs as one 8-device process sampling the whole batch."""
    from tests.policy.multihost_generate import PROMPTS

    tiny_checkpoint.build(str(tmp_path / "model"), [text for _, text in PROMPTS] * 20, vocab_size=300,
                          max_pixels=48 * 48)
    run_one_process("tests.policy.multihost_generate", tmp_path / "model", tmp_path / "single.json")
    run_two_processes("tests.policy.multihost_generate", tmp_path / "model", tmp_path / "multi.json")
    one = json.loads((tmp_path / "single.json.0").read_text())
    parts = [json.loads((tmp_path / f"multi.json.{p}").read_text()) for p in (0, 1)]
    assert parts[0]["tokens"] + parts[1]["tokens"] == one["tokens"]
    np.testing.assert_allclose(parts[0]["logprobs"] + parts[1]["logprobs"], one["logprobs"], rtol=1e-5, atol=1e-6)
