"""Per-token log-probabilities without materialising [batch, length, vocab] logits.

With Qwen's 151,936-token vocabulary, full logits for a GRPO batch are tens of
GB. We run the LM head on chunks of the sequence inside `lax.map`, each chunk
rematerialised in the backward pass, so peak memory is one chunk's logits.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _chunk_logprobs(model, hidden, targets, temperature):
    logits = model.logits(hidden) / temperature  # float32 [B, C, V]
    logz = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    probs = jnp.exp(logits - logz[..., None])
    entropy = logz - jnp.sum(probs * logits, axis=-1)
    return picked - logz, entropy


def token_logprobs(model, hidden: jax.Array, targets: jax.Array, *, chunk_size: int | None = None,
                   temperature: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """(log p(targets[b, t] | hidden[b, t]), entropy) each [B, T] float32, at `temperature`.

    `hidden` are final-normed hidden states (`model(..., return_hidden=True)`); `model.logits`
    maps them to vocabulary logits. `chunk_size` splits the sequence (None: one chunk).
    """
    batch, length = targets.shape
    if chunk_size is None or chunk_size >= length:
        return _chunk_logprobs(model, hidden, targets, temperature)
    chunks = -(-length // chunk_size)
    pad = chunks * chunk_size - length
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    hidden = hidden.reshape(batch, chunks, chunk_size, -1).swapaxes(0, 1)
    targets = targets.reshape(batch, chunks, chunk_size).swapaxes(0, 1)

    @jax.checkpoint
    def one(args):
        return _chunk_logprobs(model, *args, temperature)

    logprobs, entropy = jax.lax.map(one, (hidden, targets))
    unchunk = lambda x: x.swapaxes(0, 1).reshape(batch, chunks * chunk_size)[:, :length]  # noqa: E731
    return unchunk(logprobs), unchunk(entropy)


def sequence_logprobs(model, input_ids, positions, attention_mask, pixel_values=None, vision_inputs=None, *,
                      chunk_size: int | None = None, temperature: float = 1.0):
    """Log-probs [B, T-1] (and entropies) of input_ids[:, 1:] under teacher forcing."""
    hidden, _ = model(input_ids, positions, attention_mask, pixel_values, vision_inputs, return_hidden=True)
    return token_logprobs(model, hidden[:, :-1], input_ids[:, 1:], chunk_size=chunk_size, temperature=temperature)
