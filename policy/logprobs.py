"""Teacher-forced per-token log-probabilities without materialising [batch, length, vocab] logits.

With Qwen's 151,936-token vocabulary, full logits for a GRPO batch are tens of
GB. We run the LM head on chunks of the sequence inside `lax.map`, each chunk
rematerialised in the backward pass, so peak memory is one chunk's logits.
One function serves SFT (temperature 1, the raw distribution) and GRPO (the
distribution the sampler drew from: `process` applies the same logit processing).
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

# Logits a `process` function removed (-inf) become this: finite, so a target token outside the
# processed support gets a huge negative log-prob and zero probability, never NaN gradients.
REMOVED_LOGIT = -1e30


def _picked(logits, targets):
    return (jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
            - jax.nn.logsumexp(logits, axis=-1))


def _chunk_logprobs(model, hidden, targets, temperature, process, also_tempered):
    raw = model.logits(hidden).astype(jnp.float32)  # [B, C, V]
    logits = raw / temperature if process is None else jnp.maximum(process(raw), REMOVED_LOGIT)
    logz = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    probs = jnp.exp(logits - logz[..., None])
    entropy = logz - jnp.sum(probs * logits, axis=-1)
    if also_tempered:
        return picked - logz, entropy, _picked(raw / temperature, targets)
    return picked - logz, entropy


def token_logprobs(model, hidden: jax.Array, targets: jax.Array, *, chunk_size: int | None = None,
                   temperature: float = 1.0,
                   process: Callable[[jax.Array], jax.Array] | None = None,
                   also_tempered: bool = False) -> tuple[jax.Array, ...]:
    """(log p(targets[b, t] | hidden[b, t]), entropy) each [B, T] float32.

    `hidden` are final-normed hidden states (`model(..., return_hidden=True)`); `model.logits`
    maps them to vocabulary logits. The distribution is softmax(logits / temperature), or
    softmax(process(logits)) when `process` (float32 logits [..., V] -> processed logits, -inf
    for removed tokens, e.g. `policy.sampling.process_logits`) is given. `also_tempered` appends
    the log-probs under softmax(logits / temperature) from the same LM-head pass (GRPO's KL term
    compares full-vocabulary distributions). `chunk_size` splits the sequence (None: one chunk).
    """
    batch, length = targets.shape
    if chunk_size is None or chunk_size >= length:
        return _chunk_logprobs(model, hidden, targets, temperature, process, also_tempered)
    chunks = -(-length // chunk_size)
    pad = chunks * chunk_size - length
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    hidden = hidden.reshape(batch, chunks, chunk_size, -1).swapaxes(0, 1)
    targets = targets.reshape(batch, chunks, chunk_size).swapaxes(0, 1)

    @jax.checkpoint
    def one(args):
        return _chunk_logprobs(model, *args, temperature, process, also_tempered)

    outputs = jax.lax.map(one, (hidden, targets))
    return tuple(x.swapaxes(0, 1).reshape(batch, chunks * chunk_size)[:, :length] for x in outputs)


def teacher_forced_logprobs(model, batch: dict, *, chunk_size: int | None = None, temperature: float = 1.0,
                            process: Callable[[jax.Array], jax.Array] | None = None,
                            also_tempered: bool = False) -> tuple[jax.Array, ...]:
    """Log-probs and entropies [B, T-1] of input_ids[:, 1:] given everything before them.

    `batch` holds input_ids, positions, attention_mask, pixel_values and vision (as the SFT and
    GRPO input pipelines build them) and, when rows share their prompt's patches, patch_start;
    see `token_logprobs` for the rest.
    """
    hidden, _ = model(batch["input_ids"], batch["positions"], batch["attention_mask"], batch.get("pixel_values"),
                      batch.get("vision"), return_hidden=True, patch_start=batch.get("patch_start"))
    return token_logprobs(model, hidden[:, :-1], batch["input_ids"][:, 1:], chunk_size=chunk_size,
                          temperature=temperature, process=process, also_tempered=also_tempered)


def masked_nll(logprobs: jax.Array, target_mask: jax.Array) -> jax.Array:
    """Mean negative log-likelihood over the targets target_mask [B, T-1] marks."""
    mask = target_mask.astype(jnp.float32)
    return -(logprobs * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def sft_loss(model, batch: dict, rng, *, chunk_size: int | None = None) -> tuple[jax.Array, dict]:
    """Supervised loss (`policy.train_state.make_train_step`'s loss_fn): mean negative log-likelihood of
    the target tokens (target_mask) under teacher forcing. Visual-ERM SFT and GRPO's warm start train
    with it."""
    del rng
    logprobs, _ = teacher_forced_logprobs(model, batch, chunk_size=chunk_size)
    return masked_nll(logprobs, batch["target_mask"]), {"target_tokens": batch["target_mask"].sum()}
