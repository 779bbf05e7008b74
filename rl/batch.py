"""Prompt + completion -> the static-shape batch a jitted update consumes.

Rows are prompt-major: row i holds a completion of prompt i // G. Each row is
the left-padded prompt followed by its right-padded completion, so M-RoPE
positions from `get_rope_index` continue exactly where the sampler's did, and
teacher-forced log-probs equal the sampler's. Each prompt's patches appear once
(the vision tower encodes every image once, not once per completion), packed in
the model's vision bins; the per-row `patch_start` points each row at its
prompt's patches in real-patch order (the tower's merged rows of real patches
come first, in order, whatever padding the bins hold).
"""
from __future__ import annotations

import numpy as np

from policy.model import prepare_inputs
from policy.vision import pack_pixels


def build_batch(model_config, prompt: dict, completions: np.ndarray, lengths: np.ndarray, group_size: int,
                *, patch_buckets=None, pad_id: int = 0, behaviour_logprobs: np.ndarray | None = None,
                rows: np.ndarray | None = None) -> dict:
    """prompt: Processor output for P prompts (left padded); completions [P*G, C]; lengths [P*G].

    `rows` (default: row i -> prompt i // group_size) names each completion's prompt, so a
    shuffled mini-batch of rows is built the same way.
    `target_mask` [P*G, T-1] marks the targets input_ids[:, 1:] that are completion tokens;
    `behaviour_logprobs` [P*G, C] (the sampler's) come back target-aligned the same way."""
    prompt_ids, prompt_mask = np.asarray(prompt["input_ids"]), np.asarray(prompt["attention_mask"])
    n_prompts, prompt_len = prompt_ids.shape
    n, width = completions.shape
    if rows is None:
        if n != n_prompts * group_size:
            raise ValueError(f"{n} completions for {n_prompts} prompts x {group_size} samples")
        rows = np.arange(n) // group_size
    rows = np.asarray(rows)
    if len(rows) != n or rows.min(initial=0) < 0 or rows.max(initial=0) >= n_prompts:
        raise ValueError(f"rows must name one of the {n_prompts} prompts for each of the {n} completions")
    completion_mask = (np.arange(width)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)
    input_ids = np.concatenate([prompt_ids[rows], np.where(completion_mask, completions, pad_id)], axis=1)
    attention_mask = np.concatenate([prompt_mask[rows], completion_mask], axis=1).astype(np.int32)
    # Targets are input_ids[:, 1:]; a target counts when it is a completion token.
    target_mask = np.concatenate([np.zeros((n, prompt_len - 1), np.int32), completion_mask], axis=1)
    extra = {}
    if behaviour_logprobs is not None:
        extra["behaviour_logprobs"] = np.concatenate(
            [np.zeros((n, prompt_len - 1), np.float32), np.where(completion_mask, behaviour_logprobs, 0.0)],
            axis=1).astype(np.float32)

    grids = np.asarray(prompt.get("image_grid_thw", np.zeros((0, 3))), np.int64).reshape(-1, 3)
    pixel_values = patch_start = None
    row_grids = grids
    if len(grids):
        image_tokens = (prompt_ids == model_config.image_token_id) & (prompt_mask > 0)
        merge = model_config.vision.spatial_merge_size ** 2
        per_image = grids.prod(axis=1)
        images_per_prompt = _images_per_prompt(image_tokens.sum(axis=1), per_image // merge)
        starts = np.concatenate([[0], np.cumsum(per_image)])
        first_image = np.concatenate([[0], np.cumsum(images_per_prompt)])
        patches = np.asarray(prompt["pixel_values"], np.float32)[: starts[-1]]
        patch_start = starts[first_image[rows]].astype(np.int32)
        row_grids = np.concatenate([grids[first_image[p]:first_image[p + 1]] for p in rows])
        pixel_values = pack_pixels(patches, grids, model_config, patch_buckets=patch_buckets)
    inputs = prepare_inputs(model_config, input_ids, attention_mask, row_grids if len(grids) else None,
                            pixel_values.shape[0] if pixel_values is not None else None,
                            grids if len(grids) else None)
    return {"input_ids": inputs.input_ids, "attention_mask": inputs.attention_mask, "positions": inputs.positions,
            "target_mask": target_mask, "pixel_values": pixel_values, "vision": inputs.vision,
            "patch_start": patch_start, **extra}


def _images_per_prompt(tokens_per_prompt: np.ndarray, tokens_per_image: np.ndarray) -> np.ndarray:
    """How many of the (ordered) images belong to each prompt, from its image-token count."""
    counts, image = [], 0
    for tokens in tokens_per_prompt:
        taken = 0
        while tokens > 0:
            if image >= len(tokens_per_image):
                raise ValueError("prompts hold more image tokens than image_grid_thw describes")
            tokens -= tokens_per_image[image]
            image += 1
            taken += 1
        if tokens != 0:
            raise ValueError("a prompt's image tokens do not match whole images")
        counts.append(taken)
    return np.asarray(counts, np.int64)
