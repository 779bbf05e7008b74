"""Qwen3-VL multimodal RoPE (M-RoPE) position ids, computed on the host in numpy.

Same values as transformers' `Qwen3VLModel.get_rope_index`: text tokens advance all three axes
(temporal, height, width) together; an image's `t*h*w/merge^2` tokens get (t, row, col) offsets
from the current position, after which the position jumps by `max(h, w) / merge`. Padding
(attention_mask == 0) gets position 0 and is skipped when counting.

Decoding continues with `position = k + rope_deltas` on all three axes, where k is the index of
the new token among the row's valid (unpadded) tokens, i.e. the first generated token sits at
`max(prompt positions) + 1`.
"""
from __future__ import annotations

import numpy as np

QWEN3_VL_IMAGE_TOKEN_ID = 151655  # <|image_pad|>
QWEN3_VL_VISION_START_TOKEN_ID = 151652  # <|vision_start|>


def _image_positions(grid_thw: np.ndarray, spatial_merge_size: int) -> np.ndarray:
    """[3, t*h'*w'] (t, row, col) offsets of one image's merged tokens, row-major."""
    t, h, w = (int(v) for v in grid_thw)
    h, w = h // spatial_merge_size, w // spatial_merge_size
    tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([tt.ravel(), hh.ravel(), ww.ravel()], 0)


def get_rope_index(input_ids: np.ndarray, image_grid_thw: np.ndarray | None = None,
                   attention_mask: np.ndarray | None = None, *, spatial_merge_size: int = 2,
                   image_token_id: int = QWEN3_VL_IMAGE_TOKEN_ID,
                   vision_start_token_id: int | None = QWEN3_VL_VISION_START_TOKEN_ID,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Returns (position_ids int32 [3, B, T], rope_deltas int32 [B, 1]).

    `image_grid_thw` lists the batch's images in order of appearance (row 0's images first);
    trailing all-zero rows (bucket padding) are ignored. Each image is a run of exactly
    `t*h*w/merge^2` image tokens, so back-to-back images are split by their grids; when
    `vision_start_token_id` is given, every image run must follow that token (as the chat template
    writes it), which catches stray `<|image_pad|>` text early.
    """
    input_ids = np.asarray(input_ids)
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {input_ids.shape}")
    batch, length = input_ids.shape
    mask = np.ones_like(input_ids, bool) if attention_mask is None else np.asarray(attention_mask).astype(bool)
    grids = np.zeros((0, 3), np.int64) if image_grid_thw is None else np.asarray(image_grid_thw, np.int64)
    grids = grids.reshape(-1, 3)
    grids = grids[np.prod(grids, axis=1) > 0]
    position_ids = np.zeros((3, batch, length), np.int64)
    deltas = np.zeros((batch, 1), np.int64)
    next_grid = 0
    for b in range(batch):
        ids = input_ids[b][mask[b]]
        n = ids.shape[0]
        pos = np.zeros((3, n), np.int64)
        image_at = np.flatnonzero(ids == image_token_id)
        i = cur = 0
        while i < n:
            later = image_at[np.searchsorted(image_at, i):]
            j = int(later[0]) if later.size else n
            if j > i:  # text run [i, j)
                pos[:, i:j] = cur + np.arange(j - i)
                cur, i = cur + j - i, j
                continue
            if next_grid >= grids.shape[0]:
                raise ValueError(f"row {b} has more image tokens than image_grid_thw has images")
            grid = grids[next_grid]
            next_grid += 1
            size = int(np.prod(grid)) // spatial_merge_size**2
            if i + size > n or not np.all(ids[i:i + size] == image_token_id):
                raise ValueError(f"row {b}: image {next_grid - 1} with grid {grid.tolist()} needs {size} "
                                 f"consecutive image tokens at valid index {i}")
            if vision_start_token_id is not None and (i == 0 or ids[i - 1] != vision_start_token_id):
                raise ValueError(f"row {b}: image tokens at valid index {i} do not follow <|vision_start|>")
            pos[:, i:i + size] = cur + _image_positions(grid, spatial_merge_size)
            cur += int(max(grid[1], grid[2])) // spatial_merge_size
            i += size
        position_ids[:, b, mask[b]] = pos
        deltas[b, 0] = (int(pos.max()) + 1 - n) if n else 0
    if next_grid != grids.shape[0]:
        raise ValueError(f"image_grid_thw has {grids.shape[0]} images but the tokens use {next_grid}")
    return position_ids.astype(np.int32), deltas.astype(np.int32)
