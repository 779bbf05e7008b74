"""Per-chip temporary bytes and FLOPs of the compiled vision tower against the number of images.

    TPU_SKIP_MDS_QUERY=1 python bench/vision_memory.py --topology=v5p:4x4x4 --images=4,16 --vision_bins=4096,0

Compiles `Qwen3VL.encode_images` of the 8B config (bf16 compute, fp32 parameters) ahead of time
for a TPU topology this machine does not have (libtpu, `jax.experimental.topologies`), with every
chip on the `fsdp` axis, for N 1024x1024 images (4,096 patches each), as `launch.aot --vision_patches`
builds it (`policy.aot.vision_program`: patches split over the chips in whole vision bins), and prints
the per-chip argument / temporary / output bytes and FLOPs (XLA's matmuls plus the splash kernels,
`policy.hlo_cost`). `--vision_bins`: attention bins of 4,096 patches (one image each, what a run
with `max_side=1024` uses) against 0 (one bin over the call: the old layout, quadratic FLOPs).
Without a TPU topology it compiles for the local devices.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
from absl import flags

from policy import aot, cli
from policy.config import Qwen3VLConfig
from policy.sharding import make_mesh

GIB = 2**30
SIDE_PATCHES = 64  # a 1024x1024 image at patch 16


def topology_devices(name: str | None):
    if name is None:
        return jax.devices()
    from jax.experimental import topologies

    topo = topologies.get_topology_desc(platform="tpu", topology_name=name, chip_config_name="megacore",
                                        chips_per_host_bounds=(2, 2, 1), num_slices=1)
    return topo.devices


FLAGS = flags.FlagValues()
flags.DEFINE_string("topology", "v5p:4x4x4", "TPU topology name, or 'local' for jax.devices()", flag_values=FLAGS)
flags.DEFINE_list("images", ["4", "16"], "image counts to compile, comma-separated", flag_values=FLAGS)
flags.DEFINE_list("vision_bins", ["4096"], "Qwen3VLConfig.vision_bin values to compile (0: one bin per call)",
                  flag_values=FLAGS)
flags.DEFINE_string("attention_impl", None, "vision attention implementation (default: the config's)",
                    flag_values=FLAGS)
flags.register_validator("images", lambda v: all(x.isdigit() and int(x) > 0 for x in v),
                         "must be positive integers, e.g. 4,16", flag_values=FLAGS)


def main():
    args = cli.parse(FLAGS, None, __doc__)
    mesh = make_mesh(devices=topology_devices(None if args.topology == "local" else args.topology))
    kw = dict(dtype="bfloat16", param_dtype="float32")
    if args.attention_impl:
        kw["attention_impl"] = args.attention_impl
    for vision_bin in map(int, args.vision_bins):
        config = Qwen3VLConfig.qwen3vl_8b(vision_bin=vision_bin, **kw)
        rows = []
        for images in map(int, args.images):
            n = images * SIDE_PATCHES**2
            r = aot.compile_program(aot.vision_program(config, mesh, n), mesh)
            if r.error:
                print(f"vision_bin {vision_bin}, {images:3d} images: FAILED {r.error}", flush=True)
                continue
            rows.append((images, r.temp_bytes, r.flops))
            print(f"vision_bin {vision_bin}, {images:3d} images, {n:6d} patches on {mesh.size} chips: per chip "
                  f"argument {r.argument_bytes / GIB:.2f} GiB, temporary {r.temp_bytes / GIB:.2f} GiB, output "
                  f"{r.output_bytes / GIB:.2f} GiB, {r.flops / 1e12:.2f} TFLOP", flush=True)
        if len(rows) > 1:
            (i0, t0, f0), (i1, t1, f1) = rows[0], rows[-1]
            print(f"vision_bin {vision_bin}: temporary bytes x{t1 / t0:.2f}, FLOPs x{f1 / f0:.2f} for x{i1 / i0:.2f} "
                  f"images (linear: x{i1 / i0:.2f}, quadratic: x{(i1 / i0) ** 2:.2f})")


if __name__ == "__main__":
    main()
