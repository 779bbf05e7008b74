"""policy.logprobs: one teacher-forced log-prob function for SFT and GRPO, checked against full logits."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policy.config import Qwen3VLConfig
from policy.logprobs import masked_nll, teacher_forced_logprobs
from policy.model import forward_logits, init_model, prepare_inputs
from policy.sampling import SamplingParams, process_logits


@pytest.fixture(scope="module")
def setup():
    model = init_model(Qwen3VLConfig.tiny(), seed=0)
    ids = np.random.default_rng(0).integers(3, model.config.text.vocab_size, (2, 7))
    inputs = prepare_inputs(model.config, ids, np.ones((2, 7), np.int32))
    batch = {k: jnp.asarray(getattr(inputs, k)) for k in ("input_ids", "attention_mask", "positions")}
    logits = jnp.asarray(forward_logits(model, inputs.input_ids, inputs.attention_mask), jnp.float32)[:, :-1]
    return model, batch, logits


def test_matches_log_softmax_of_full_logits_chunked_or_not(setup):
    model, batch, logits = setup
    expected = jnp.take_along_axis(jax.nn.log_softmax(logits / 0.7), batch["input_ids"][:, 1:, None], -1)[..., 0]
    for chunk in (None, 4):
        logprobs, entropy = teacher_forced_logprobs(model, batch, chunk_size=chunk, temperature=0.7)
        np.testing.assert_allclose(logprobs, expected, rtol=1e-5, atol=1e-5)
        assert logprobs.shape == entropy.shape == (2, 6)


def test_processed_distribution_and_tokens_outside_it(setup):
    model, batch, logits = setup
    params = SamplingParams(temperature=0.7, top_k=3)
    process = functools.partial(process_logits, params=params)
    processed, _, tempered = teacher_forced_logprobs(model, batch, chunk_size=4, temperature=0.7, process=process,
                                                     also_tempered=True)
    targets = batch["input_ids"][:, 1:]
    kept = jnp.take_along_axis(process(logits), targets[..., None], -1)[..., 0] > -jnp.inf
    expected = jnp.take_along_axis(jax.nn.log_softmax(process(logits)), targets[..., None], -1)[..., 0]
    np.testing.assert_allclose(jnp.where(kept, processed, 0.0), jnp.where(kept, expected, 0.0), rtol=1e-5, atol=1e-5)
    assert bool(jnp.all(jnp.isfinite(processed))) and bool(jnp.all(jnp.where(kept, True, processed < -1e29)))
    plain = teacher_forced_logprobs(model, batch, temperature=0.7)[0]
    np.testing.assert_allclose(tempered, plain, rtol=1e-5, atol=1e-5)


def test_masked_nll_by_hand():
    logprobs = jnp.array([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    mask = jnp.array([[0, 1, 1], [1, 0, 0]])
    np.testing.assert_allclose(masked_nll(logprobs, mask), (2 + 3 + 4) / 3)
