"""Qwen3-VL image processing on the host (numpy + PIL), plus patch bucketing for static jit shapes.

Matches `transformers`' `Qwen2VLImageProcessorPil` configured as Qwen3-VL's preprocessor
(patch 16, temporal patch 2, merge 2, mean = std = 0.5, 256*256 <= pixels <= 4096*4096) bit for
bit: same RGB conversion, same PIL bicubic resample, same float64 rescale then float32 normalise,
same merge-block patch order. The vision tower therefore sees exactly what the PyTorch model saw
during pre-training.

Padded patches are zeros, laid out by `patch_layout`, the one packing every batch builder uses: with
a bin size L (the vision tower attends within bins of L patches, `Qwen3VLConfig.vision_bin`), images
are placed next-fit in order into bins of whole images, the rest of a bin padding; without bins, real
patches first, then padding. The vision tower must (1) keep padding out of every real image's
attention (`patch_segment_ids`, -1 = padding), and (2) drop their merged outputs: the text side holds
exactly `num_patches // merge_size**2` `<|image_pad|>` tokens, so the tower moves the merged rows of
real patches to the front in order; padded `image_grid_thw` rows are (0, 0, 0) and contribute no
tokens and no RoPE.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

# Qwen3-VL preprocessor_config.json values (Qwen/Qwen3-VL-*-Instruct).
QWEN3_VL_MIN_PIXELS = 65536  # 256 * 256
QWEN3_VL_MAX_PIXELS = 16777216  # 4096 * 4096
# Patch-count buckets (multiples of merge_size**2 = 4). 4096 patches = one 1024x1024 image.
DEFAULT_PATCH_BUCKETS = (256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
DEFAULT_IMAGE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def smart_resize(height: int, width: int, factor: int = 32, min_pixels: int = QWEN3_VL_MIN_PIXELS,
                 max_pixels: int = QWEN3_VL_MAX_PIXELS) -> tuple[int, int]:
    """Target (height, width): multiples of `factor`, area in [min_pixels, max_pixels], aspect kept.

    Same arithmetic as transformers' `smart_resize` (Python `round`, i.e. banker's rounding).
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def to_rgb(image: Any) -> Image.Image:
    """PIL RGB image; transparency is composited onto white, as transformers does.

    Accepts PIL images and uint8 numpy arrays (H, W) or (H, W, 3).
    """
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise NotImplementedError(
                f"numpy images must be uint8 (H, W[, 3]); got {image.dtype}: float inputs would need "
                "transformers' 0-1 range guessing, which this port does not reproduce")
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
            raise NotImplementedError(
                f"numpy images must be (H, W) or (H, W, 3) channels-last; got shape {image.shape}. "
                "Pass RGBA or channels-first data as a PIL image instead")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or uint8 numpy array, got {type(image)}")
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize(image: Image.Image, height: int, width: int, resample: int = Image.BICUBIC) -> np.ndarray:
    """PIL resample to (height, width); returns uint8 (H, W, 3). Same call transformers makes."""
    return np.asarray(image.resize((width, height), resample=resample, reducing_gap=None))


def rescale_normalize(pixels: np.ndarray, rescale_factor: float = 1 / 255,
                      mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                      do_rescale: bool = True, do_normalize: bool = True) -> np.ndarray:
    """uint8 (H, W, C) -> float32; rescale in float64 then cast, normalise in float32 (as oracle)."""
    out = pixels.astype(np.float32)
    if do_rescale:
        out = (pixels.astype(np.float64) * rescale_factor).astype(np.float32)
    if do_normalize:
        out = (out - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return out


def patchify(image: np.ndarray, patch_size: int = 16, merge_size: int = 2,
             temporal_patch_size: int = 2) -> tuple[np.ndarray, int, int]:
    """(H, W, C) float32 -> ([gh*gw, C*T*p*p] patches in merge-block order, gh, gw).

    Rows run over merge blocks (row-major), then the merge_size x merge_size patches inside each
    block, so every consecutive `merge_size**2` rows are the ones the patch merger fuses. A still
    image is repeated `temporal_patch_size` times along time, like the oracle.
    """
    height, width, channels = image.shape
    gh, gw = height // patch_size, width // patch_size
    if gh * patch_size != height or gw * patch_size != width or gh % merge_size or gw % merge_size:
        raise ValueError(f"image {height}x{width} is not a multiple of patch*merge={patch_size * merge_size}")
    chw = np.transpose(image, (2, 0, 1)).astype(np.float32, copy=False)
    blocks = chw.reshape(channels, gh // merge_size, merge_size, patch_size, gw // merge_size, merge_size,
                         patch_size)
    blocks = np.transpose(blocks, (1, 4, 2, 5, 0, 3, 6))  # (bh, bw, mh, mw, C, ph, pw)
    blocks = np.broadcast_to(blocks[:, :, :, :, :, None], (*blocks.shape[:5], temporal_patch_size,
                                                            patch_size, patch_size))
    return blocks.reshape(gh * gw, channels * temporal_patch_size * patch_size * patch_size), gh, gw


@dataclasses.dataclass(frozen=True)
class ImageProcessor:
    """Qwen3-VL image preprocessing. `max_side` additionally caps the longer output side in pixels
    (the judge uses 1024 or 768); it is folded into the single resample, never a second one."""

    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = QWEN3_VL_MIN_PIXELS
    max_pixels: int = QWEN3_VL_MAX_PIXELS
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255
    resample: int = int(Image.BICUBIC)
    do_rescale: bool = True
    do_normalize: bool = True
    max_side: int | None = None

    @classmethod
    def from_dict(cls, config: dict, **overrides) -> ImageProcessor:
        """From a Hugging Face preprocessor_config.json dict (new `size` or legacy min/max_pixels)."""
        if config.get("do_resize", True) is False:
            raise NotImplementedError("do_resize=False: patchify needs sides that are multiples of 32, "
                                      "which only the smart resize guarantees")
        if config.get("do_convert_rgb", True) is False:
            raise NotImplementedError("do_convert_rgb=False: the vision tower takes 3 channels only")
        size = config.get("size") or {}
        kwargs = dict(
            patch_size=config.get("patch_size", cls.patch_size),
            temporal_patch_size=config.get("temporal_patch_size", cls.temporal_patch_size),
            merge_size=config.get("merge_size", cls.merge_size),
            min_pixels=config.get("min_pixels") or size.get("shortest_edge") or cls.min_pixels,
            max_pixels=config.get("max_pixels") or size.get("longest_edge") or cls.max_pixels,
            image_mean=tuple(config.get("image_mean", cls.image_mean)),
            image_std=tuple(config.get("image_std", cls.image_std)),
            rescale_factor=config.get("rescale_factor", cls.rescale_factor),
            resample=int(config.get("resample", cls.resample)),
            do_rescale=config.get("do_rescale", True),
            do_normalize=config.get("do_normalize", True),
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_pretrained(cls, path: str, **overrides) -> ImageProcessor:
        """Reads `path/preprocessor_config.json` (or the `image_processor` entry of a combined
        `processor_config.json`) when present, else Qwen3-VL defaults."""
        file = os.path.join(path, "preprocessor_config.json")
        if os.path.exists(file):
            with open(file) as f:
                return cls.from_dict(json.load(f), **overrides)
        file = os.path.join(path, "processor_config.json")
        if os.path.exists(file):
            with open(file) as f:
                combined = json.load(f)
            if isinstance(combined.get("image_processor"), dict):
                return cls.from_dict(combined["image_processor"], **overrides)
        return cls(**overrides)

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @property
    def patch_dim(self) -> int:
        return 3 * self.temporal_patch_size * self.patch_size * self.patch_size

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """Resized (height, width) for an input of that size, honouring `max_side`."""
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            height, width = max(1, round(height * scale)), max(1, round(width * scale))
        h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        if self.max_side is not None:  # rounding to the factor grid (or min_pixels) may overshoot
            cap = max(self.factor, self.max_side // self.factor * self.factor)
            h, w = min(h, cap), min(w, cap)
        return h, w

    def max_image_patches(self) -> int:
        """Patches of the largest image this processor emits: a `max_side` square, else a max_pixels one."""
        side = self.max_side or math.isqrt(self.max_pixels)
        h, w = self.target_size(side, side)
        return (h // self.patch_size) * (w // self.patch_size)

    def num_image_tokens(self, height: int, width: int) -> int:
        """`<|image_pad|>` tokens one input image of this size expands to."""
        h, w = self.target_size(height, width)
        return (h // self.patch_size) * (w // self.patch_size) // self.merge_size**2

    def preprocess(self, image: Any) -> tuple[np.ndarray, np.ndarray]:
        """One image -> (patches float32 [gh*gw, patch_dim], grid_thw int32 [3])."""
        rgb = to_rgb(image)
        h, w = self.target_size(rgb.height, rgb.width)
        pixels = rescale_normalize(resize(rgb, h, w, self.resample), self.rescale_factor, self.image_mean,
                                   self.image_std, self.do_rescale, self.do_normalize)
        patches, gh, gw = patchify(pixels, self.patch_size, self.merge_size, self.temporal_patch_size)
        return patches, np.array([1, gh, gw], np.int32)

    def __call__(self, images: Iterable[Any]) -> dict[str, np.ndarray]:
        """Images -> {"pixel_values": [sum patches, patch_dim] f32, "image_grid_thw": [n, 3] i32}."""
        patches, grids = [], []
        for image in images:
            p, g = self.preprocess(image)
            patches.append(p)
            grids.append(g)
        if not patches:
            return {"pixel_values": np.zeros((0, self.patch_dim), np.float32),
                    "image_grid_thw": np.zeros((0, 3), np.int32)}
        return {"pixel_values": np.concatenate(patches, 0), "image_grid_thw": np.stack(grids, 0)}


def pick_bucket(n: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= n; a size beyond every bucket is an error, not a silent new jit shape."""
    for b in sorted(buckets):
        if b >= n:
            return int(b)
    raise ValueError(f"{n} exceeds the largest bucket {max(buckets)}; add a bucket or shrink the inputs "
                     "(e.g. a smaller max_side)")


class ImageTooLargeForBin(ValueError):
    """An image has more patches than an attention bin holds (`Qwen3VLConfig.vision_bin`)."""


def patch_layout(sizes: Sequence[int], bin_patches: int = 0, *, num_patches: int | None = None,
                 patch_buckets: Sequence[int] | None = None) -> tuple[np.ndarray, int]:
    """(row of each real patch in the padded batch, padded patch count) for frames of `sizes` patches.

    Without bins (`bin_patches` 0) the real patches come first. With bins of `bin_patches` patches, frames
    are placed next-fit in order: a frame that does not fit the current bin's rest starts the next bin,
    so the real patches keep their order and no frame spans two bins. The padded count is `num_patches`
    if given, else the smallest of `patch_buckets` holding the bins used, else exactly those bins; with
    bins it must be a multiple of `bin_patches` (config key `patch_buckets`).
    """
    sizes = [int(s) for s in sizes]
    if bin_patches:
        rows, used = [], 0
        for size in sizes:
            if size > bin_patches:
                raise ImageTooLargeForBin(
                    f"an image of {size} patches does not fit a vision attention bin of {bin_patches} patches; "
                    "lower `max_side` (the run's largest image sets the bin) or raise the model's vision_bin")
            if used % bin_patches + size > bin_patches:
                used = -(-used // bin_patches) * bin_patches
            rows.append(np.arange(used, used + size))
            used += size
        needed = -(-used // bin_patches) * bin_patches
    else:
        rows, needed = [np.arange(sum(sizes))], sum(sizes)
    dest = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0,), np.int64)
    total = needed if num_patches is None and not patch_buckets else (
        int(num_patches) if num_patches is not None else pick_bucket(needed, patch_buckets))
    if bin_patches:
        bad = [b for b in (patch_buckets or ()) if b % bin_patches]
        if bad or total % bin_patches:
            raise ValueError(f"`patch_buckets` must be multiples of the vision attention bin ({bin_patches} patches, "
                             f"the largest image `max_side` allows): {tuple(bad) or total}")
    if total < needed:
        raise ValueError(f"{needed} padded patches needed (bins of {bin_patches or 'all'}) but num_patches={total}")
    return dest, total


def pack_patches(pixel_values: np.ndarray, sizes: Sequence[int], bin_patches: int = 0, *,
                 num_patches: int | None = None, patch_buckets: Sequence[int] | None = None) -> np.ndarray:
    """pixel_values [sum sizes, D] placed as `patch_layout` lays them out; zeros elsewhere. Rows after the
    frames' patches (a batch already padded at the end, as `pad_images` without bins pads) are dropped."""
    pixel_values = np.asarray(pixel_values, np.float32)
    if int(sum(sizes)) > pixel_values.shape[0]:
        raise ValueError(f"frames cover {int(sum(sizes))} patches but pixel_values has {pixel_values.shape[0]}")
    pixel_values = pixel_values[: int(sum(sizes))]
    dest, total = patch_layout(sizes, bin_patches, num_patches=num_patches, patch_buckets=patch_buckets)
    out = np.zeros((total, pixel_values.shape[1]), np.float32)
    out[dest] = pixel_values
    return out


def frame_sizes(image_grid_thw) -> np.ndarray:
    """Patches of every frame, in order (an image of t frames gives t entries of h*w)."""
    grid = np.asarray(image_grid_thw, np.int64).reshape(-1, 3)
    return np.repeat(grid[:, 1] * grid[:, 2], grid[:, 0])


def binned_buckets(patch_buckets: Sequence[int], bin_patches: int) -> tuple[int, ...]:
    """Default patch buckets rounded up to whole vision bins of `bin_patches` (0: unchanged), for callers
    whose buckets are not a run's config (the judge's sampler, the embedding reward)."""
    if not bin_patches:
        return tuple(patch_buckets)
    return tuple(sorted({-(-int(b) // bin_patches) * bin_patches for b in patch_buckets}))


def pad_images(pixel_values: np.ndarray, image_grid_thw: np.ndarray, *, merge_size: int = 2,
               patch_buckets: Sequence[int] = DEFAULT_PATCH_BUCKETS,
               image_buckets: Sequence[int] = DEFAULT_IMAGE_BUCKETS, bin_patches: int = 0) -> dict[str, np.ndarray]:
    """Pads patches and images up to fixed buckets so the jitted vision tower sees few shapes.

    Returns pixel_values [P, D] (laid out by `patch_layout` with `bin_patches`), image_grid_thw [N, 3]
    ((0,0,0) rows appended), patch_mask bool [P], image_mask bool [N], patch_segment_ids int32 [P]
    (index of the owning image, -1 for padding) and the valid counts num_patches / num_images (int32
    scalars). See the module docstring for how padding must be ignored.
    """
    if any(b % merge_size**2 for b in patch_buckets):
        raise ValueError(f"patch buckets must be multiples of merge_size**2={merge_size**2}: {patch_buckets}")
    grids = np.asarray(image_grid_thw, np.int32).reshape(-1, 3)
    n_img, n_patch = grids.shape[0], pixel_values.shape[0]
    sizes = np.prod(grids, axis=1)
    if int(sizes.sum()) != n_patch:
        raise ValueError(f"image_grid_thw covers {int(sizes.sum())} patches but pixel_values has {n_patch}")
    frames = frame_sizes(grids)
    dest, p_bucket = patch_layout(frames, bin_patches, patch_buckets=patch_buckets)
    values = pack_patches(pixel_values, frames, bin_patches, num_patches=p_bucket)
    i_bucket = pick_bucket(n_img, image_buckets)
    padded_grids = np.zeros((i_bucket, 3), np.int32)
    padded_grids[:n_img] = grids
    segments = np.full((p_bucket,), -1, np.int32)
    segments[dest] = np.repeat(np.arange(n_img, dtype=np.int32), sizes)
    return {
        "pixel_values": values,
        "image_grid_thw": padded_grids,
        "patch_mask": segments >= 0,
        "image_mask": np.arange(i_bucket) < n_img,
        "patch_segment_ids": segments,
        "num_patches": np.int32(n_patch),
        "num_images": np.int32(n_img),
    }
