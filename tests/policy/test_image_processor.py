"""Parity of policy.image_processor with transformers' Qwen2VLImageProcessorPil set up as Qwen3-VL's."""
import math

import numpy as np
import pytest
from PIL import Image

from policy.image_processor import (
    DEFAULT_PATCH_BUCKETS,
    ImageProcessor,
    pad_images,
    patchify,
    pick_bucket,
    smart_resize,
)

pil_mod = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")

QWEN3_VL = {"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "patch_size": 16,
            "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
SMALL_MAX = 320 * 320  # a low max_pixels so "just above the max" stays cheap to test


def oracle(**overrides):
    cfg = {**QWEN3_VL, **overrides}
    return pil_mod.Qwen2VLImageProcessorPil(**cfg)


def noise(h, w, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed + 7 * h + w)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2}[mode]
    data = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(data[..., 0] if channels == 1 else data, mode=mode)


def assert_same(ours, ref):
    assert ours["image_grid_thw"].tolist() == np.asarray(ref["image_grid_thw"]).tolist()
    ref_pv = np.asarray(ref["pixel_values"])
    assert ours["pixel_values"].shape == ref_pv.shape and ours["pixel_values"].dtype == np.float32
    diff = float(np.abs(ours["pixel_values"] - ref_pv).max()) if ref_pv.size else 0.0
    assert diff <= 1e-6, diff


# (height, width): tiny, very wide, very tall, odd, just below / at / just above the 256*256 minimum.
DEFAULT_SIZES = [(1, 1), (3, 7), (16, 2000), (2000, 16), (31, 33), (255, 256), (256, 256), (257, 256),
                 (255, 257), (333, 517), (17, 3001), (1023, 1025), (600, 7)]
# Around a 320*320 maximum: at, just above, just below, and far above.
SMALL_MAX_SIZES = [(320, 320), (321, 320), (319, 321), (330, 330), (640, 100), (1000, 999)]


@pytest.fixture(scope="module")
def qwen3_oracle():
    return oracle()


@pytest.mark.parametrize("hw", DEFAULT_SIZES)
def test_matches_oracle_default_limits(hw, qwen3_oracle):
    image = noise(*hw)
    assert_same(ImageProcessor.from_dict(QWEN3_VL)([image]), qwen3_oracle(images=[image], return_tensors="np"))


@pytest.mark.parametrize("hw", SMALL_MAX_SIZES)
def test_matches_oracle_around_max_pixels(hw):
    image = noise(*hw, seed=1)
    ref = oracle(size={"shortest_edge": 32 * 32, "longest_edge": SMALL_MAX})(images=[image], return_tensors="np")
    ours = ImageProcessor(min_pixels=32 * 32, max_pixels=SMALL_MAX)([image])
    assert_same(ours, ref)
    _, gh, gw = ours["image_grid_thw"][0]
    assert gh * gw * 16 * 16 <= SMALL_MAX


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_other_modes_match_oracle(mode, qwen3_oracle):
    image = noise(90, 130, mode=mode)
    assert_same(ImageProcessor()([image]), qwen3_oracle(images=[image], return_tensors="np"))


def test_palette_with_transparency_and_numpy_inputs(qwen3_oracle):
    pal = noise(40, 50).convert("P")
    pal.info["transparency"] = 3
    arr = np.asarray(noise(70, 45))
    gray = np.asarray(noise(33, 80, mode="L"))
    images = [pal, arr, gray]
    ref = qwen3_oracle(images=[pal, Image.fromarray(arr), Image.fromarray(gray)], return_tensors="np")
    assert_same(ImageProcessor()(images), ref)


def test_several_images_concatenate_like_oracle(qwen3_oracle):
    images = [noise(300, 200), noise(10, 900), noise(64, 64)]
    assert_same(ImageProcessor()(images), qwen3_oracle(images=images, return_tensors="np"))


def test_smart_resize_matches_transformers():
    rng = np.random.default_rng(0)
    for h, w in rng.integers(1, 5000, (300, 2)):
        if max(h, w) / min(h, w) > 200:
            continue
        for lo, hi in ((65536, 16777216), (32 * 32, SMALL_MAX)):
            assert smart_resize(int(h), int(w), 32, lo, hi) == pil_mod.smart_resize(int(h), int(w), 32, lo, hi)
    with pytest.raises(ValueError):
        smart_resize(1, 300)


def test_from_dict_reads_both_config_styles():
    assert ImageProcessor.from_dict(QWEN3_VL) == ImageProcessor()
    legacy = ImageProcessor.from_dict({"min_pixels": 1024, "max_pixels": 4096, "patch_size": 14,
                                       "image_mean": [0.1, 0.2, 0.3]})
    assert (legacy.min_pixels, legacy.max_pixels, legacy.patch_size) == (1024, 4096, 14)
    assert legacy.image_mean == (0.1, 0.2, 0.3)
    with pytest.raises(NotImplementedError):
        ImageProcessor.from_dict({"do_resize": False})


@pytest.mark.parametrize("max_side", [1024, 768])
def test_max_side_caps_the_longer_side(max_side):
    proc = ImageProcessor(max_side=max_side)
    for h, w in [(2000, 1500), (1500, 2000), (4000, 300), (5000, 30), (1024, 1024), (800, 600), (300, 200)]:
        th, tw = proc.target_size(h, w)
        assert max(th, tw) <= max_side and th % 32 == 0 and tw % 32 == 0
        if max(h, w) <= max_side:  # untouched below the cap
            assert (th, tw) == smart_resize(h, w)
    th, tw = proc.target_size(2000, 1500)  # aspect ratio kept within one 32 px step
    assert max(th, tw) == max_side and math.isclose(th / tw, 2000 / 1500, rel_tol=0.05)
    out = proc([noise(1500, 2000)])
    _, gh, gw = out["image_grid_thw"][0]
    assert out["pixel_values"].shape[0] == gh * gw and max(gh, gw) * 16 <= max_side
    assert proc.num_image_tokens(1500, 2000) == gh * gw // 4


def test_patch_rows_are_merge_blocks():
    """Each run of merge^2 rows is one 2x2 block of patches, blocks in row-major order."""
    gh, gw, p = 4, 6, 16
    ids = np.repeat(np.repeat(np.arange(gh * gw).reshape(gh, gw), p, 0), p, 1).astype(np.float32)
    patches, _, _ = patchify(np.stack([ids] * 3, -1))
    first = patches[:, 0].astype(int).tolist()
    assert first[:8] == [0, 1, 6, 7, 2, 3, 8, 9]
    assert np.all(patches == patches[:, :1])  # every value of a row comes from one patch


def test_pad_images_buckets_and_masks():
    proc = ImageProcessor()
    out = proc([noise(300, 200), noise(64, 64)])
    n = out["pixel_values"].shape[0]
    padded = pad_images(out["pixel_values"], out["image_grid_thw"], image_buckets=(1, 4))
    bucket = pick_bucket(n, DEFAULT_PATCH_BUCKETS)
    assert padded["pixel_values"].shape == (bucket, 1536) and bucket >= n and bucket % 4 == 0
    assert np.array_equal(padded["pixel_values"][:n], out["pixel_values"])
    assert not padded["pixel_values"][n:].any()
    assert padded["image_grid_thw"].shape == (4, 3) and not padded["image_grid_thw"][2:].any()
    assert padded["patch_mask"].sum() == n == int(padded["num_patches"]) and int(padded["num_images"]) == 2
    assert padded["image_mask"].tolist() == [True, True, False, False]
    sizes = np.prod(out["image_grid_thw"], 1)
    segments = padded["patch_segment_ids"]
    assert (segments == 0).sum() == sizes[0] and (segments == 1).sum() == sizes[1]
    assert (padded["patch_segment_ids"][n:] == -1).all()
    empty = pad_images(np.zeros((0, 1536), np.float32), np.zeros((0, 3), np.int32))
    assert empty["pixel_values"].shape[0] == DEFAULT_PATCH_BUCKETS[0] and not empty["patch_mask"].any()
    with pytest.raises(ValueError):
        pad_images(out["pixel_values"], out["image_grid_thw"], patch_buckets=(8,))
    with pytest.raises(ValueError):
        pad_images(out["pixel_values"], out["image_grid_thw"], patch_buckets=(4098,))


def test_bad_inputs_raise():
    with pytest.raises(NotImplementedError):
        ImageProcessor()([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(NotImplementedError):
        ImageProcessor()([np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(TypeError):
        ImageProcessor()(["not an image"])
    empty = ImageProcessor()([])
    assert empty["pixel_values"].shape == (0, 1536) and empty["image_grid_thw"].shape == (0, 3)
