"""Visual-ERM as a judge: batched critiques of (reference, rendering) pairs.

Sampling follows the published judge settings per kind: charts and SVGs are
sampled (temperature 0.7, top-p 0.8, top-k 20, presence penalty 1.5, images at
most 1,024 px on the longer side); tables are greedy with repetition penalty
1.05 and images at most 768 px. Every output goes through `parse_critique`; an
unparsable critique is asked for once more (`reasks`, as the official reward code
does) and then stays a defined invalid critique, never an error.

On a multi-host mesh every sampler call is a collective, so every process must
make the same calls whatever its own number of pairs: the processes first agree
on the largest count per kind, then each runs that many chunks in a fixed kind
order, filling chunks it has no pairs for with a white dummy pair whose output is
dropped.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np
from PIL import Image

from policy.hf_io import load_pretrained
from policy.host_batch import agreed_max
from policy.image_processor import DEFAULT_PATCH_BUCKETS, ImageProcessor, binned_buckets
from policy.processor import Processor
from policy.sampler import Sampler, SamplingParams
from visual_erm.prompts import judge_messages
from visual_erm.reward import critique_reward
from visual_erm.schema import Critique, parse_critique


@dataclasses.dataclass(frozen=True)
class JudgeSettings:
    params: SamplingParams
    max_side: int


PUBLISHED_SETTINGS = {
    "chart": JudgeSettings(SamplingParams(temperature=0.7, top_p=0.8, top_k=20, presence_penalty=1.5), 1024),
    "svg": JudgeSettings(SamplingParams(temperature=0.7, top_p=0.8, top_k=20, presence_penalty=1.5), 1024),
    "table": JudgeSettings(SamplingParams(temperature=0.0, repetition_penalty=1.05), 768),
}


GREEDY_SETTINGS = {kind: dataclasses.replace(s, params=SamplingParams(temperature=0.0))
                   for kind, s in PUBLISHED_SETTINGS.items()}


def judge_patch_buckets(batch_size: int, vision_bin: int = 0) -> tuple[int, ...]:
    """Patch buckets of a judge call of `batch_size` pairs (per host), in whole vision bins of `vision_bin`
    patches (`binned_buckets`). The default buckets end at 8 pairs of two 1,024-px images (65,536 patches);
    a larger call gets the same ladder doubled on up to `batch_size` such pairs, so that sizing the call for
    decode (judge.batch_size) does not outgrow its prefill."""
    buckets = list(DEFAULT_PATCH_BUCKETS)
    need = -(-batch_size // 8) * DEFAULT_PATCH_BUCKETS[-1]
    while buckets[-1] < need:
        buckets.append(2 * buckets[-1])
    return binned_buckets(buckets, vision_bin)


def judge_vision_bin(image_processor: ImageProcessor, settings: dict | None = None) -> int:
    """The judge's vision attention bin (`Qwen3VLConfig.vision_bin`): the largest image any kind's
    `max_side` lets the processor emit (`settings` update the published ones, as `VisualERM` does)."""
    every = dict(PUBLISHED_SETTINGS, **(settings or {}))
    return max(dataclasses.replace(image_processor, max_side=s.max_side).max_image_patches() for s in every.values())


class VisualERM:
    """A Qwen3-VL reward model: `critique(kinds, references, candidates) -> list[Critique]`."""

    def __init__(self, model, processor: Processor, *, settings: dict | None = None, max_new_tokens: int = 4096,
                 batch_size: int = 8, mesh=None, seed: int = 0, reasks: int = 1):
        self.model = model
        self.reasks = reasks
        self.processor = processor
        self.settings = dict(PUBLISHED_SETTINGS, **(settings or {}))
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self._key = jax.random.key(seed)
        suppress = (processor.image_token_id, processor.vision_start_token_id)
        self.settings = {kind: dataclasses.replace(s, params=dataclasses.replace(s.params, suppress_ids=suppress))
                         for kind, s in self.settings.items()}
        self._processors = {
            kind: Processor(processor.tokenizer, dataclasses.replace(processor.image_processor, max_side=s.max_side),
                            seq_buckets=processor.seq_buckets, patch_buckets=None, image_buckets=None)
            for kind, s in self.settings.items()
        }
        tokenizer = processor.tokenizer
        stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self.sampler = Sampler(model, pad_id=processor.pad_token_id, stop_ids=stops, mesh=mesh,
                               patch_buckets=judge_patch_buckets(batch_size, model.config.vision_bin))

    @classmethod
    def from_pretrained(cls, path: str, *, dtype=None, mesh=None, **kwargs) -> VisualERM:
        """From a Hugging Face directory (e.g. one `launch.export_hf` wrote), attending in vision bins of the
        largest image its settings allow (`judge_vision_bin`)."""
        import jax.numpy as jnp

        processor = Processor.from_pretrained(path)
        _, model = load_pretrained(path, dtype=dtype or jnp.float32, mesh=mesh,
                                   vision_bin=judge_vision_bin(processor.image_processor, kwargs.get("settings")))
        return cls(model, processor, mesh=mesh, **kwargs)

    def _generate(self, kind: str, pairs: Sequence[tuple]) -> list[str]:
        setting, processor = self.settings[kind], self._processors[kind]
        batch = processor([judge_messages(kind, ref, cand) for ref, cand in pairs], padding_side="left")
        self._key, key = jax.random.split(self._key)
        out = self.sampler.generate(batch["input_ids"], batch["attention_mask"], batch["pixel_values"],
                                    batch["image_grid_thw"], max_new_tokens=self.max_new_tokens, rng=key,
                                    params=setting.params)
        return [processor.decode(tokens[:length]) for tokens, length in zip(out.tokens, out.lengths)]

    def critique_texts(self, kinds: Sequence[str], references, candidates, *, rng=None) -> list[str]:
        """Raw judge outputs, in input order (batched per kind). `rng` (a jax key) makes a call
        reproducible on its own, e.g. `fold_in(key, step)` in a resumable training loop."""
        if not len(kinds) == len(references) == len(candidates):
            raise ValueError("kinds, references and candidates must have the same length")
        if rng is not None:
            self._key = rng
        unknown = set(kinds) - set(self.settings)
        if unknown:
            raise ValueError(f"no judge settings for kind(s) {sorted(unknown)}")
        order = sorted(self.settings)  # the same on every process
        indices = {kind: [i for i, k in enumerate(kinds) if k == kind] for kind in order}
        counts = agreed_max(*(len(indices[kind]) for kind in order))  # a collective on several hosts
        texts: list[str | None] = [None] * len(kinds)
        dummy = Image.new("RGB", (32, 32), "white")
        for kind, count in zip(order, counts):
            for start in range(0, count, self.batch_size):
                chunk = indices[kind][start:start + self.batch_size]
                pairs = [(references[i], candidates[i]) for i in chunk] or [(dummy, dummy)]
                outputs = self._generate(kind, pairs)
                for i, text in zip(chunk, outputs):
                    texts[i] = text
        return texts

    def critique(self, kinds: Sequence[str], references, candidates, *, rng=None) -> list[Critique]:
        """Parsed critiques; unparsable ones are asked for again up to `reasks` times."""
        texts = self.critique_texts(kinds, references, candidates, rng=rng)
        critiques = [parse_critique(text, kind) for text, kind in zip(texts, kinds)]
        for _ in range(self.reasks):
            again = [i for i, c in enumerate(critiques) if not c.valid]
            (anywhere,) = agreed_max(len(again))
            if not anywhere:
                break
            retried = self.critique_texts([kinds[i] for i in again], [references[i] for i in again],
                                          [candidates[i] for i in again])
            for i, text in zip(again, retried):
                critiques[i] = parse_critique(text, kinds[i])
        return critiques

    def rewards(self, kinds: Sequence[str], references, candidates, **reward_kwargs) -> np.ndarray:
        """critique_reward of each critique, in [0, 1]."""
        critiques = self.critique(kinds, references, candidates)
        return np.array([critique_reward(c, k, **reward_kwargs) for c, k in zip(critiques, kinds)], np.float32)
