"""Vision attention in bins (policy.image_processor.patch_layout, Qwen3VLConfig.vision_bin): images packed
next-fit into bins of whole images keep the unbinned tower's merged features (reference and splash), the
tower's FLOPs grow linearly with the number of images, and bad layouts are refused naming the config key."""
import dataclasses
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policy import aot
from policy.config import Qwen3VLConfig
from policy.image_processor import ImageTooLargeForBin, frame_sizes, pad_images, patch_layout
from policy.model import init_model
from policy.sharding import make_mesh
from policy.vision import VisionInputs, pack_pixels, real_merged_rows, vision_metadata

needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None, reason="libtpu is not installed")

# Frames of 24, 64, 4, 16 and 2 x 8 patches: with bins of 64, the 24 starts bin 0, the 64 fills bin 1, the
# 4, 16 and both frames of the video share bin 2 (several images in a bin), bin 3 is padding.
GRID = np.array([[1, 4, 6], [1, 8, 8], [1, 2, 2], [1, 4, 4], [2, 2, 4]])
BIN, PATCHES = 64, 256


def _encode(model, grid, pv, num_patches=None):
    """The merged and DeepStack rows of the real patches, in order."""
    meta = vision_metadata(grid, model.config, num_patches)
    packed = pack_pixels(pv, grid, model.config, num_patches=len(meta.segment_ids))
    merged, ds = jax.jit(lambda m, p, v: m.visual(p, v))(model, jnp.asarray(packed),
                                                         VisionInputs(*map(jnp.asarray, meta)))
    real = meta.segment_ids[:: model.config.vision.spatial_merge_size**2] >= 0
    return np.asarray(merged)[real], np.asarray(ds)[:, real]


@pytest.mark.parametrize("impl", ["reference", "splash"])
def test_binned_tower_equals_the_unbinned_one(impl):
    config = Qwen3VLConfig.tiny(attention_impl=impl)
    n = int(frame_sizes(GRID).sum())
    pv = np.random.default_rng(0).standard_normal((n, config.vision.patch_dim)).astype(np.float32)
    want, want_ds = _encode(init_model(config), GRID, pv)
    got, got_ds = _encode(init_model(dataclasses.replace(config, vision_bin=BIN)), GRID, pv, PATCHES)
    np.testing.assert_allclose(got, want, atol=1e-7, rtol=0)
    np.testing.assert_allclose(got_ds, want_ds, atol=1e-7, rtol=0)


def test_binned_tower_under_a_mesh_equals_one_device():
    """Bins split over 8 devices (whole bins per device, patches placed in their bins)."""
    config = Qwen3VLConfig.tiny(attention_impl="splash", vision_bin=BIN)
    model = init_model(config)
    grid = np.concatenate([GRID] * 2)
    n = int(frame_sizes(grid).sum())
    pv = np.random.default_rng(1).standard_normal((n, config.vision.patch_dim)).astype(np.float32)
    want, _ = _encode(model, grid, pv, 2 * PATCHES)
    with jax.set_mesh(make_mesh((2, 4, 1))):
        got, _ = _encode(model, grid, pv, 2 * PATCHES)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_real_merged_rows_list_the_real_rows_in_order():
    segments = np.repeat([0, -1, 1, 2, -1], [8, 4, 4, 8, 8])
    assert real_merged_rows(jnp.asarray(segments), 4).tolist() == [0, 1, 3, 4, 5, 2, 6, 7]


def test_next_fit_keeps_the_order_and_starts_a_bin_when_an_image_does_not_fit():
    dest, total = patch_layout([24, 64, 4, 16, 8, 8], 64, patch_buckets=(128, 256))
    starts = dest[np.cumsum([0, 24, 64, 4, 16, 8])]
    assert starts.tolist() == [0, 64, 128, 132, 148, 156] and total == 256
    assert np.all(np.diff(dest) > 0)  # real patches keep their order
    meta = vision_metadata(GRID, Qwen3VLConfig.tiny(vision_bin=BIN), PATCHES)
    assert meta.segment_ids.reshape(-1, BIN)[2].tolist() == [2] * 4 + [3] * 16 + [4] * 8 + [5] * 8 + [-1] * 28
    assert (meta.segment_ids[192:] == -1).all() and not meta.pos_w[192:].any()
    unbinned, total = patch_layout([24, 64, 4], 0, num_patches=100)
    assert unbinned.tolist() == list(range(92)) and total == 100


def test_pad_images_packs_pixels_and_segments_alike():
    pv = np.arange(16 * 3, dtype=np.float32).reshape(16, 3) + 1
    out = pad_images(pv, np.array([[1, 2, 4], [1, 2, 4]]), patch_buckets=(36,), bin_patches=12)
    assert out["patch_segment_ids"].tolist() == [0] * 8 + [-1] * 4 + [1] * 8 + [-1] * 16
    np.testing.assert_array_equal(out["pixel_values"][out["patch_mask"]], pv)
    assert not out["pixel_values"][~out["patch_mask"]].any()


def test_an_image_larger_than_a_bin_and_buckets_off_the_bins_are_refused():
    config = Qwen3VLConfig.tiny(vision_bin=16)
    with pytest.raises(ImageTooLargeForBin, match="max_side"):
        vision_metadata(np.array([[1, 4, 6]]), config)
    with pytest.raises(ValueError, match="patch_buckets"):
        pack_pixels(np.zeros((16, config.vision.patch_dim), np.float32), np.array([[1, 4, 4]]), config,
                    patch_buckets=(24, 48))
    with pytest.raises(ValueError, match="patch_buckets"):
        vision_metadata(np.array([[1, 4, 4]]), config, num_patches=40)
    with pytest.raises(ValueError, match="vision_bin"):
        Qwen3VLConfig.tiny(vision_bin=6)


@needs_libtpu
def test_vision_flops_grow_linearly_with_the_number_of_images():
    """16 and 64 images of 64 patches, compiled for v5p-8 (4 chips, splash): with bins of one image the
    FLOPs (XLA's matmuls plus the splash kernels, policy.hlo_cost as the AOT report counts them) grow 4x;
    one bin over the call (the old layout) grows them by more, its attention being quadratic."""
    mesh = aot.topology_mesh(aot.topology("v5p-8"), ())
    flops = {}
    for vision_bin in (64, 0):
        config = Qwen3VLConfig.tiny(vision_bin=vision_bin)
        for images in (16, 64) if vision_bin else (64,):
            report = aot.compile_program(aot.vision_program(config, mesh, 64 * images), mesh)
            assert report.error is None, report.error
            flops[vision_bin, images] = report.flops
    assert flops[64, 64] / flops[64, 16] == pytest.approx(4.0, rel=1e-9)
    assert flops[0, 64] > 1.5 * flops[64, 64]
