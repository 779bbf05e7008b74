"""`policy.Sampler`: greedy parity with transformers' `generate` (unscanned and scanned layers, one or
several decode phases), early exit, log-probs vs a teacher-forced pass (raw and under the processed
distribution), reproducible sampling, G samples per prompt, the candidate-set sampler against the
full-vocabulary processors, and the pure logit processors on hand-worked examples."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from policy import tiny_checkpoint
from policy.config import Qwen3VLConfig
from policy.hf_io import load_pretrained
from policy.model import forward_logits, init_model
from policy.sampler import DEFAULT_DECODE_BUCKETS, Sampler, _phase_steps, _phases
from policy.sampling import (
    SamplingParams,
    apply_penalties,
    min_p_filter,
    process_logits,
    sample_tokens,
    top_k_filter,
    top_p_filter,
)
from policy.sharding import make_mesh, state_shardings
from tests.multihost import run_one_process, run_two_processes
from tests.policy import hf_fixtures as F

PAD = 0
NEW = 32


def shard_model(model: nnx.Module, mesh: jax.sharding.Mesh) -> nnx.Module:
    """Move every parameter of `model` onto its NamedSharding (in place); returns the model."""
    state = nnx.state(model)
    shardings = state_shardings(state, mesh)
    nnx.update(model, jax.device_put(state, shardings))
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("sampler_hf")
    hf = F.save_hf_model("gqa_untied", path)
    _, model = load_pretrained(path)
    model.scanned = load_pretrained(path, scan_layers=True)[1]
    return hf, model, sampler_batch()


def sampler_batch() -> dict:
    """Three left-padded prompts: one image, text only, two images of different sizes."""
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
    return dict(ids=ids, mask=mask, pv=pv, grid=grid, patches=patches, row_images=row_images)


def _hf_generate(hf, b, eos=None):  # eos: None, an id or a list of ids
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


@pytest.mark.parametrize("scanned, decode_buckets", [(False, (256,)), (True, (8, 16))],
                         ids=["unscanned_one_phase", "scanned_three_phases"])
def test_greedy_matches_transformers_generate(setup, scanned, decode_buckets):
    hf, model, b = setup
    want = _hf_generate(hf, b)
    assert want.shape == (3, NEW)
    out = _gen(_sampler(model.scanned if scanned else model, decode_buckets=decode_buckets), b, max_new_tokens=NEW)
    assert out.steps == NEW
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


def test_decode_loop_exits_when_every_row_has_stopped(setup):
    """Stop ids that every row emits by step 6: the loop runs max(lengths) steps, not max_new_tokens."""
    hf, model, b = setup
    free = _hf_generate(hf, b)
    stops = sorted({int(t) for t in free[:, 5]})
    want = _hf_generate(hf, b, eos=stops)
    out = _gen(_sampler(model, stop_ids=stops, decode_buckets=(4,)), b, max_new_tokens=NEW)
    np.testing.assert_array_equal(out.tokens[:, :want.shape[1]], want)
    assert out.stopped.all() and out.lengths.max() <= 6
    assert out.steps == out.lengths.max()


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


def _teacher_forced_sample_logprobs(model, b, out, G, params):
    """log_softmax of `process_logits` of a full forward's logits (penalties from the prompt and the
    tokens generated before each step), at the generated tokens: the distribution sampled from."""
    rep = np.repeat(np.arange(3), G)
    ids = np.concatenate([b["ids"][rep], out.tokens], 1)
    gen_mask = (np.arange(NEW)[None] < out.lengths[:, None]).astype(np.int64)
    mask = np.concatenate([b["mask"][rep], gen_mask], 1)
    imgs = [i for r in rep for i in b["row_images"][r]]
    logits = forward_logits(model, ids, mask, np.concatenate([b["patches"][i] for i in imgs]), b["grid"][imgs])
    T, V = b["ids"].shape[1], logits.shape[-1]
    rows = np.arange(len(rep))
    seen = np.zeros((len(rep), V), bool)
    for r in rows:
        seen[r, b["ids"][rep[r]][b["mask"][rep[r]] > 0]] = True
    generated = np.zeros_like(seen)
    want = np.zeros(out.tokens.shape, np.float32)
    for s in range(NEW):
        x = process_logits(jnp.asarray(logits[:, T - 1 + s]), params, jnp.asarray(seen), jnp.asarray(generated))
        lsm = np.asarray(jax.nn.log_softmax(x, axis=-1))
        want[:, s] = np.where(gen_mask[:, s] > 0, lsm[rows, out.tokens[:, s]], 0.0)
        live = gen_mask[:, s] > 0
        seen[rows[live], out.tokens[live, s]] = True
        generated[rows[live], out.tokens[live, s]] = True
    return want


SUPPRESS = (F.IMG, F.VID, F.VSTART, F.VEND)  # teacher forcing would read them as vision tokens


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.9, top_k=40, top_p=0.95, repetition_penalty=1.1, presence_penalty=0.2,
                   suppress_ids=SUPPRESS),
    # top-p alone from 6 candidates: rows whose nucleus is wider take the full-vocabulary path
    SamplingParams(temperature=1.3, top_p=0.8, min_p=0.01, top_p_candidates=6, suppress_ids=SUPPRESS),
], ids=["topk_topp_penalties", "topp_only_fallback"])
def test_sample_logprobs_equal_teacher_forced_processed_distribution(setup, params):
    _, model, b = setup
    out = _gen(_sampler(model, stop_ids=(5,)), b, max_new_tokens=NEW, num_samples=2, rng=jax.random.key(5),
               params=params)
    want = _teacher_forced_sample_logprobs(model, b, out, 2, params)
    real = np.arange(NEW)[None] < out.lengths[:, None]
    assert np.all(np.isfinite(out.sample_logprobs[real])) and np.all(out.sample_logprobs[~real] == 0)
    diff = float(np.max(np.abs(out.sample_logprobs - want)))
    print(f"[sampler] {params}: max |sample_logprob - teacher-forced processed| = {diff:.2e}")
    assert diff <= 1e-4


def test_sampling_reproducible_logprobs_match_teacher_forcing_and_samples_differ(setup):
    _, model, b = setup
    G = 2
    params = SamplingParams(temperature=0.9, top_k=40, top_p=0.95, repetition_penalty=1.1, presence_penalty=0.2,
                            suppress_ids=SUPPRESS)
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
    np.testing.assert_array_equal(a.sample_logprobs, again.sample_logprobs)


def test_greedy_samples_of_one_prompt_are_identical(setup):
    _, model, b = setup
    out = _gen(_sampler(model), b, max_new_tokens=8, num_samples=2)
    assert out.tokens.shape == (6, 8)
    for p in range(3):
        np.testing.assert_array_equal(out.tokens[2 * p], out.tokens[2 * p + 1])
        np.testing.assert_array_equal(out.logprobs[2 * p], out.logprobs[2 * p + 1])


def test_sharded_text_only_matches_single_device_in_the_sampling_layout():
    """3 prompts from an all-fsdp (1, 8, 1) training mesh, sampled on the derived (1, 4, 2) sampling mesh
    (tensor = the 2 KV heads): padded to its 4 batch shards (samples do not depend on padding); weights
    moved from the training mesh onto it in the layout of SAMPLING_RULES (nothing on the batch axes)."""
    cfg = Qwen3VLConfig.tiny()
    ids = np.array([[0, 0, 0, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8], [0, 9, 8, 7, 6, 5, 4, 3]])
    mask = (np.arange(8)[None] >= np.array([[3], [0], [1]])).astype(np.int32)
    params = SamplingParams(temperature=1.0, top_k=8)
    ref = Sampler(init_model(cfg), pad_id=0, prompt_buckets=None).generate(
        ids, mask, max_new_tokens=6, num_samples=2, rng=7, params=params)
    mesh = make_mesh((1, 8, 1))
    sampler = Sampler(shard_model(init_model(cfg), mesh), pad_id=0, prompt_buckets=None, mesh=mesh)
    assert dict(sampler.sampling_mesh.shape) == {"data": 1, "fsdp": 4, "tensor": 2}
    assert list(sampler.sampling_mesh.devices.flat) == list(mesh.devices.flat)
    sharded = sampler.generate(ids, mask, max_new_tokens=6, num_samples=2, rng=7, params=params)
    np.testing.assert_array_equal(sharded.tokens, ref.tokens)
    np.testing.assert_allclose(sharded.logprobs, ref.logprobs, atol=1e-5)
    np.testing.assert_allclose(sharded.sample_logprobs, ref.sample_logprobs, atol=1e-5)
    assert sampler.prefill(ids, mask).prompt_ids.shape[0] == 4
    _, state = sampler.sampling_state()
    assert all(v.value.sharding.mesh == sampler.sampling_mesh for _, v in nnx.to_flat_state(state))
    specs = [v.value.sharding.spec for _, v in nnx.to_flat_state(state)]
    assert not any(a in ("data", "fsdp") or (isinstance(a, tuple) and {"data", "fsdp"} & set(a))
                   for spec in specs for a in spec)
    assert any("tensor" in spec for spec in specs)


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.7, top_k=20, top_p=0.8),  # the published judge settings
    SamplingParams(temperature=1.0, top_k=5),
    SamplingParams(temperature=1.0, top_k=3, min_p=0.3),
    SamplingParams(temperature=0.8, top_p=0.9, top_p_candidates=16),
    SamplingParams(temperature=1.0, top_p=0.5, top_p_candidates=4, min_p=0.05),
], ids=["k20_p08", "k5", "k3_minp", "p09_16cand", "p05_4cand_minp"])
def test_candidate_sampler_draws_from_process_logits(params):
    """Rows built to hit every path: peaked (the candidates decide), flat (top-p needs more than the
    candidates: full-vocabulary fallback), and ties at the k-th value / at the threshold."""
    V = 300
    rng = np.random.default_rng(0)
    peaked = rng.normal(0, 4, (6, V))
    flat = rng.normal(0, 0.05, (3, V))
    ties = np.tile(np.linspace(0, -1, V), (3, 1))
    ties[:, :8] = 2.0  # eight-way tie at the top
    logits = jnp.asarray(np.concatenate([peaked, flat, ties]), jnp.float32)
    processed = process_logits(logits, params)
    lsm = np.asarray(jax.nn.log_softmax(processed, axis=-1))
    for seed in range(3):
        tok, raw, slp = sample_tokens(jax.random.split(jax.random.key(seed), logits.shape[0]), logits, params)
        tok = np.asarray(tok)
        rows = np.arange(len(tok))
        assert np.all(np.isfinite(np.asarray(processed)[rows, tok]))  # only surviving tokens are drawn
        np.testing.assert_allclose(np.asarray(slp), lsm[rows, tok], atol=2e-6)
        np.testing.assert_allclose(np.asarray(raw), np.asarray(jax.nn.log_softmax(logits))[rows, tok], atol=1e-6)


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


def test_decode_phases_are_whole_kernel_blocks_and_count_every_step():
    """4,096 new tokens feed 4,095 back: the last phase's cache is rounded up to whole 128-slot blocks of
    the TPU decode kernel, and the phases' steps (the AOT report's loop trips) add up to 4,095."""
    phases = _phases(4096, DEFAULT_DECODE_BUCKETS)
    assert phases == (256, 512, 1024, 1536, 2048, 3072, 4096)
    assert _phase_steps(4096, phases) == (256, 256, 512, 512, 512, 1024, 1023)
    assert _phases(33, (8, 16)) == (8, 16, 128) and sum(_phase_steps(33, (8, 16, 128))) == 32
