"""`Processor`: chat messages + images -> Qwen3-VL model inputs as numpy arrays (host side).

Does what `transformers.Qwen3VLProcessor` does for images (template, one `<|image_pad|>` per
merged patch, tokenise, pad), adds M-RoPE `position_ids`/`rope_deltas`, and optionally pads the
sequence length, patch count and image count up to fixed buckets so that jitted steps see only a
few static shapes. Videos are not supported.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from policy.chat import apply_chat_template, collect_images
from policy.image_processor import DEFAULT_IMAGE_BUCKETS, ImageProcessor, pad_images, pick_bucket
from policy.rope_index import get_rope_index

DEFAULT_SEQ_BUCKETS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def _is_conversation(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and (len(x) == 0 or isinstance(x[0], dict))


class Processor:
    """Tokeniser + image processor + chat template + bucketing for Qwen3-VL.

    `seq_buckets` / `patch_buckets` / `image_buckets` set the default bucketing of `__call__`
    (None: pad only to the longest row and keep the exact patch count).
    """

    def __init__(self, tokenizer, image_processor: ImageProcessor | None = None, *,
                 seq_buckets: Sequence[int] | None = None, patch_buckets: Sequence[int] | None = None,
                 image_buckets: Sequence[int] | None = None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor or ImageProcessor()
        self.seq_buckets = seq_buckets
        self.patch_buckets = patch_buckets
        self.image_buckets = image_buckets
        ids = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>"])
        self.image_token_id, self.video_token_id, self.vision_start_token_id = (int(i) for i in ids)
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else tokenizer.convert_tokens_to_ids("<|endoftext|>"))

    @classmethod
    def from_pretrained(cls, path: str, *, max_side: int | None = None, image_overrides: dict | None = None,
                        **kwargs) -> Processor:
        """Loads the tokenizer from the local directory `path` (never the hub) and the image settings
        from its preprocessor_config.json when present (Qwen3-VL defaults otherwise)."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        overrides = dict(image_overrides or {})
        if max_side is not None:
            overrides["max_side"] = max_side
        return cls(tokenizer, ImageProcessor.from_pretrained(path, **overrides), **kwargs)

    def apply_chat_template(self, messages: Sequence[dict], *, add_generation_prompt: bool = True,
                            add_vision_id: bool = False) -> str:
        return apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                   add_vision_id=add_vision_id)

    def _expand(self, ids: list[int], grids: np.ndarray) -> list[int]:
        """Replaces the k-th `<|image_pad|>` with t*h*w/merge^2 copies for the k-th image."""
        if self.video_token_id in ids:
            raise NotImplementedError("video inputs: Qwen3-VL needs frame timestamps and a video "
                                      "processor, which this port does not have")
        slots = [i for i, t in enumerate(ids) if t == self.image_token_id]
        if len(slots) != len(grids):
            raise ValueError(f"prompt has {len(slots)} image placeholders but {len(grids)} images were given")
        merge = self.image_processor.merge_size**2
        out, start = [], 0
        for slot, grid in zip(slots, grids):
            out.extend(ids[start:slot])
            out.extend([self.image_token_id] * (int(np.prod(grid)) // merge))
            start = slot + 1
        out.extend(ids[start:])
        return out

    def __call__(self, inputs: Any, images: Sequence[Any] | None = None, *, add_generation_prompt: bool = True,
                 add_vision_id: bool = False, padding_side: str = "left", max_length: int | None = None,
                 seq_buckets: Sequence[int] | None = ..., patch_buckets: Sequence[int] | None = ...,
                 image_buckets: Sequence[int] | None = ...) -> dict[str, np.ndarray]:
        """Builds a batch.

        inputs: one conversation (list of message dicts), a list of conversations, one prompt
        string already in chat format, or a list of them. images: per sample, in placeholder
        order (a flat list when `inputs` is a single sample); by default the images embedded in
        the messages' image items. Length: `max_length` if given (longer rows are an error, since
        cutting would orphan image tokens), else the smallest seq bucket, else the longest row.

        Returns int32 input_ids / attention_mask [B, T], position_ids [3, B, T], rope_deltas
        [B, 1], float32 pixel_values [P, D] and int32 image_grid_thw [N, 3]; with patch buckets
        also patch_mask, image_mask, patch_segment_ids, num_patches, num_images (see
        `policy.image_processor.pad_images`).
        """
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        seq_buckets = self.seq_buckets if seq_buckets is ... else seq_buckets
        patch_buckets = self.patch_buckets if patch_buckets is ... else patch_buckets
        image_buckets = self.image_buckets if image_buckets is ... else image_buckets
        single = isinstance(inputs, str) or _is_conversation(inputs)
        samples = [inputs] if single else list(inputs)
        if images is not None:
            per_sample = [list(images)] if single else [list(x) for x in images]
            if len(per_sample) != len(samples):
                raise ValueError(f"{len(samples)} samples but images for {len(per_sample)}")
        else:
            per_sample = [[] if isinstance(s, str) else collect_images(s) for s in samples]
        texts = [s if isinstance(s, str) else self.apply_chat_template(
            s, add_generation_prompt=add_generation_prompt, add_vision_id=add_vision_id) for s in samples]

        flat_images = [im for ims in per_sample for im in ims]
        vision = self.image_processor(flat_images)
        grids = vision["image_grid_thw"]
        rows, offset = [], 0
        for ids, ims in zip(self.tokenizer(texts)["input_ids"], per_sample):
            rows.append(self._expand(list(ids), grids[offset:offset + len(ims)]))
            offset += len(ims)

        longest = max(len(r) for r in rows)
        if max_length is not None:
            if longest > max_length:
                raise ValueError(f"a row has {longest} tokens > max_length={max_length}")
            length = max_length
        elif seq_buckets:
            length = pick_bucket(longest, seq_buckets)
        else:
            length = longest
        input_ids = np.full((len(rows), length), self.pad_token_id, np.int32)
        attention_mask = np.zeros((len(rows), length), np.int32)
        for b, row in enumerate(rows):
            sl = slice(length - len(row), length) if padding_side == "left" else slice(0, len(row))
            input_ids[b, sl] = row
            attention_mask[b, sl] = 1
        position_ids, rope_deltas = get_rope_index(
            input_ids, grids, attention_mask, spatial_merge_size=self.image_processor.merge_size,
            image_token_id=self.image_token_id, vision_start_token_id=self.vision_start_token_id)
        out = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
               "rope_deltas": rope_deltas, **vision}
        if patch_buckets:
            out.update(pad_images(vision["pixel_values"], grids, merge_size=self.image_processor.merge_size,
                                  patch_buckets=patch_buckets,
                                  image_buckets=image_buckets or DEFAULT_IMAGE_BUCKETS))
        return out

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        """Token ids (list or 1-D array) -> text."""
        return self.tokenizer.decode(np.asarray(ids).reshape(-1).tolist(), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, ids: Any, skip_special_tokens: bool = True) -> list[str]:
        """[B, T] token ids -> B texts."""
        return [self.decode(row, skip_special_tokens) for row in np.asarray(ids)]
