"""Sampling knobs, the pure logit processors (the reference definition of the distribution sampled
from) and `sample_tokens`, which draws from that distribution without sorting the vocabulary.

Why a candidate set: with top-k and/or top-p every kept token is among the K largest processed
logits, so `sample_tokens` takes them with `jax.lax.top_k` (K = top_k, or `top_p_candidates` for
top-p alone) and filters, normalises and samples over K values instead of sorting 151,936 logits per
row per step. Each row checks that the candidates decide its distribution exactly; the rows where
they do not take the full-vocabulary path of `process_logits` (sort included), so the distribution
sampled from is always exactly `process_logits`':
  * top-k (with or without top-p / min-p): exact unless a tie at the k-th value extends the top-k
    set beyond k (transformers keeps ties), then that row falls back;
  * top-p without top-k: exact when the K candidates hold at least mass p (the nucleus ends inside
    them; top-p 0.8 on a trained LM needs far fewer than 256), else that row falls back;
  * either way, a row falls back if tokens outside the candidates tie with the kept threshold.
The candidate probabilities use the full-vocabulary normaliser (a logsumexp, no sort), so
`sample_logprobs` equal `log_softmax(process_logits(...))` at the sampled token up to float rounding.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

_NEG_INF = -jnp.inf


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """Static sampling knobs (hashable: each distinct value compiles once).

    temperature 0 = greedy (argmax after penalties). top_k 0 = off; top_p 1 = off; min_p 0 = off.
    repetition_penalty (HF semantics, 1 = off): over tokens in prompt + generated, logits > 0 are
    divided by it and logits < 0 multiplied. presence_penalty (OpenAI/vLLM semantics, 0 = off):
    subtracted once from every token already *generated* in this sample.
    Order (as transformers): suppress -> penalties -> temperature -> top_k -> top_p -> min_p.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    suppress_ids: tuple[int, ...] = ()  # never sampled (e.g. <|image_pad|>), greedy included
    top_p_candidates: int = 256  # candidate set for top-p without top-k (a speed knob: exact either way)

    def __post_init__(self):
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1 or not 0 <= self.min_p <= 1:
            raise ValueError(f"invalid sampling params {self}")
        if self.top_p_candidates < 1:
            raise ValueError("top_p_candidates must be >= 1")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")
        object.__setattr__(self, "suppress_ids", tuple(int(i) for i in self.suppress_ids))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def uses_seen(self) -> bool:
        return self.repetition_penalty != 1.0

    @property
    def uses_generated(self) -> bool:
        return self.presence_penalty != 0.0


# ---------------------------------------------------------------------------------------------
# Pure logit processors ([..., V] float32 in, same shape out; removed tokens get -inf)
# ---------------------------------------------------------------------------------------------
def apply_penalties(logits, seen=None, generated=None, repetition_penalty=1.0, presence_penalty=0.0):
    """HF repetition penalty over `seen` [.., V] bool; presence penalty over `generated` [.., V] bool."""
    if seen is not None and repetition_penalty != 1.0:
        pen = jnp.where(logits < 0, logits * repetition_penalty, logits / repetition_penalty)
        logits = jnp.where(seen, pen, logits)
    if generated is not None and presence_penalty != 0.0:
        logits = logits - presence_penalty * generated.astype(logits.dtype)
    return logits


def top_k_filter(logits, k: int):
    """Keep the k largest (ties with the k-th kept, as transformers' TopKLogitsWarper)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = _top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth, _NEG_INF, logits)


def _top_p_threshold(sorted_desc, p: float):
    """Smallest logit kept by nucleus filtering, from logits sorted descending (may hold -inf)."""
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass strictly ahead of each token
    keep = before < p
    keep = keep.at[..., 0].set(True)
    n_keep = jnp.sum(keep, axis=-1, keepdims=True)
    return jnp.take_along_axis(sorted_desc, n_keep - 1, axis=-1)


def top_p_filter(logits, p: float, top_k: int = 0):
    """Keep the smallest prefix (by descending prob) whose mass reaches p (transformers' TopPLogitsWarper:
    a token survives iff the mass of tokens ranked strictly above it is < p). With top_k > 0 the logits
    are assumed already top-k filtered and only the k candidates are sorted."""
    if p >= 1.0:
        return logits
    if 0 < top_k < logits.shape[-1]:
        cand = _top_k(logits, top_k)[0]
    else:
        cand = -jnp.sort(-logits, axis=-1)
    return jnp.where(logits < _top_p_threshold(cand, p), _NEG_INF, logits)


def min_p_filter(logits, min_p: float):
    """Remove tokens whose probability is below min_p * max probability (transformers' MinPLogitsWarper)."""
    if min_p <= 0.0:
        return logits
    ratio = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))  # p_i / p_max
    return jnp.where(ratio < min_p, _NEG_INF, logits)


def process_logits(logits, params: SamplingParams, seen=None, generated=None):
    """Penalties, temperature and filters over the whole vocabulary: the logits of the distribution
    `sample_tokens` draws from (its reference definition; sorts the vocabulary for top-p)."""
    x = _penalised(logits.astype(jnp.float32), params, seen, generated)
    if params.greedy:
        return x
    return _filters(x / params.temperature, params)


def sample_tokens(keys, logits, params: SamplingParams, seen=None, generated=None):
    """(token [N] int32, raw log-prob [N], sampling-distribution log-prob [N]) for logits [N, V].

    keys [N]: one random key per row, so a row's draw depends on its key alone (not on the batch
    size, its padding or the row's position).

    raw: log_softmax of the float32 logits at the token (temperature 1, no penalties or filters).
    sampling: log-probability of the token under `process_logits(logits, params, seen, generated)`,
    the distribution it was drawn from (0 for greedy: a point mass).
    """
    logits = logits.astype(jnp.float32)
    x = _penalised(logits, params, seen, generated)
    if params.greedy:
        tok = _argmax(x)
        slp = jnp.zeros(tok.shape, jnp.float32)
    else:
        x = x / params.temperature
        k = _candidate_count(params, x.shape[-1])
        if k:
            tok, slp = _sample_from_candidates(keys, x, params, k)
        else:
            tok, slp = _sample_full(keys, x, params)
    raw = _pick(logits, tok) - jax.nn.logsumexp(logits, axis=-1)
    return tok, raw, slp


def _penalised(x, params: SamplingParams, seen, generated):
    if params.suppress_ids:
        x = x.at[..., jnp.asarray(params.suppress_ids, jnp.int32)].set(_NEG_INF)
    return apply_penalties(x, seen, generated, params.repetition_penalty, params.presence_penalty)


def _filters(x, params: SamplingParams):
    x = top_k_filter(x, params.top_k)
    x = top_p_filter(x, params.top_p, params.top_k)
    return min_p_filter(x, params.min_p)


def _top_k(x, k: int):
    """`jax.lax.top_k`, kept out of fusion with later uses of `x`: where its values are compared with
    `x` again, XLA:CPU turns the top-k into a sort of the whole vocabulary (~300 ms a step at 8 x
    151,936 on 2 cores, against ~2 ms)."""
    return jax.lax.optimization_barrier(jax.lax.top_k(x, k))


def _argmax(x):
    """First index of the row maximum (`jnp.argmax`'s answer, NaN aside) as int32: a max, then the least
    index holding it, which XLA:CPU vectorises (its variadic argmax reduce runs ~2.5x slower)."""
    top = jnp.max(x, axis=-1, keepdims=True)
    return jnp.min(jnp.where(x == top, jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape[-1]), axis=-1)


def _pick(x, tok):
    return jnp.take_along_axis(x, tok[:, None], axis=-1)[:, 0]


def _candidate_count(params: SamplingParams, vocab: int) -> int:
    """K for the candidate path, or 0 when every token may survive (no top-k, no top-p)."""
    if 0 < params.top_k < vocab:
        return params.top_k
    if params.top_p < 1.0:
        return min(params.top_p_candidates, vocab)
    return 0


def _categorical(keys, logits):
    return jax.vmap(jax.random.categorical)(keys, logits)


def _sample_full(keys, x, params: SamplingParams):
    """Filters over the whole vocabulary (sorts for top-p), then a draw."""
    x = _filters(x, params)
    tok = _categorical(keys, x).astype(jnp.int32)
    return tok, _pick(x, tok) - jax.nn.logsumexp(x, axis=-1)


def _sample_from_candidates(keys, x, params: SamplingParams, k: int):
    """Top-k / top-p / min-p over the k largest logits; rows the candidates cannot decide exactly
    (see the module docstring) are drawn by `_sample_full` instead."""
    vals, idx = _top_k(x, k)  # descending
    exact = jnp.ones(x.shape[:1], bool)
    keep = jnp.ones(vals.shape, bool)
    if params.top_k:  # transformers keeps ties with the k-th value
        exact &= jnp.sum(x >= vals[:, -1:], axis=-1) == k
    if params.top_p < 1.0:
        if params.top_k:  # top-p renormalises over the top-k set
            probs = jax.nn.softmax(vals, axis=-1)
        else:
            probs = jnp.exp(vals - jax.nn.logsumexp(x, axis=-1, keepdims=True))
            exact &= jnp.sum(probs, axis=-1) >= params.top_p  # the nucleus ends inside the candidates
        before = jnp.cumsum(probs, axis=-1) - probs
        keep = (before < params.top_p).at[:, 0].set(True)
        threshold = jnp.take_along_axis(vals, jnp.sum(keep, axis=-1, keepdims=True) - 1, axis=-1)
        keep = vals >= threshold
        exact &= jnp.sum(x >= threshold, axis=-1) == jnp.sum(keep, axis=-1)  # no tie outside the candidates
    if params.min_p > 0.0:
        keep &= jnp.exp(vals - vals[:, :1]) >= params.min_p
    kept = jnp.where(keep, vals, _NEG_INF)
    choice = _categorical(keys, kept)
    tok = _pick(idx, choice).astype(jnp.int32)
    slp = _pick(kept, choice) - jax.nn.logsumexp(kept, axis=-1)

    def with_fallback():
        full_tok, full_slp = _sample_full(jax.vmap(jax.random.fold_in, (0, None))(keys, 1), x, params)
        return jnp.where(exact, tok, full_tok), jnp.where(exact, slp, full_slp)

    return jax.lax.cond(jnp.all(exact), lambda: (tok, slp), with_fallback)
