"""Per-chip temporary bytes of the compiled vision tower against the number of images.

    TPU_SKIP_MDS_QUERY=1 python bench/vision_memory.py --topology=v5p:4x4x4 --images=4,16

Compiles `Qwen3VL.encode_images` of the 8B config (bf16 compute, fp32 parameters) ahead of time
for a TPU topology this machine does not have (libtpu, `jax.experimental.topologies`), with every
chip on the `fsdp` axis, for N 1024x1024 images (4,096 patches each), and prints the compiled
program's per-chip argument / temporary / output bytes and FLOPs. Per-image attention should make
temporary bytes grow linearly with N; without a TPU topology it compiles for the local devices.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from flax import nnx

from policy import cli
from policy.config import Qwen3VLConfig
from policy.model import abstract_model
from policy.sharding import make_mesh, named_sharding, state_shardings
from policy.vision import VisionInputs, vision_metadata

GIB = 2**30


def topology_devices(name: str | None):
    if name is None:
        return jax.devices()
    from jax.experimental import topologies

    topo = topologies.get_topology_desc(platform="tpu", topology_name=name, chip_config_name="megacore",
                                        chips_per_host_bounds=(2, 2, 1), num_slices=1)
    return topo.devices


def vision_program(config: Qwen3VLConfig, devices, images: int, side_patches: int = 64):
    """The compiled encode_images program for `images` square images of side_patches^2 patches."""
    mesh = make_mesh(devices=devices)
    model = abstract_model(config)
    graphdef, state = nnx.split(model)
    shardings = state_shardings(state, mesh)
    grid = np.tile([1, side_patches, side_patches], (images, 1))
    meta = vision_metadata(grid, config)
    n = len(meta.segment_ids)
    patches = named_sharding(("patches", None), (n, config.vision.patch_dim), mesh)
    meta_sh = VisionInputs(*(named_sharding(("patches",) + (None,) * (x.ndim - 1), x.shape, mesh) for x in meta))

    def abstract(x, s):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)

    def encode(state, pixel_values, meta):
        return nnx.merge(graphdef, state).encode_images(pixel_values, meta)

    args = (jax.tree.map(abstract, state, shardings),
            jax.ShapeDtypeStruct((n, config.vision.patch_dim), jnp.float32, sharding=patches),
            VisionInputs(*(abstract(x, s) for x, s in zip(meta, meta_sh))))
    with jax.set_mesh(mesh):
        return jax.jit(encode).lower(*args).compile(), n


FLAGS = flags.FlagValues()
flags.DEFINE_string("topology", "v5p:4x4x4", "TPU topology name, or 'local' for jax.devices()", flag_values=FLAGS)
flags.DEFINE_list("images", ["4", "16"], "image counts to compile, comma-separated", flag_values=FLAGS)
flags.DEFINE_string("attention_impl", None, "vision attention implementation (default: the config's)",
                    flag_values=FLAGS)
flags.register_validator("images", lambda v: all(x.isdigit() and int(x) > 0 for x in v),
                         "must be positive integers, e.g. 4,16", flag_values=FLAGS)


def main():
    args = cli.parse(FLAGS, None, __doc__)
    devices = topology_devices(None if args.topology == "local" else args.topology)
    kw = dict(dtype="bfloat16", param_dtype="float32")
    if args.attention_impl:
        kw["attention_impl"] = args.attention_impl
    config = Qwen3VLConfig.qwen3vl_8b(**kw)
    rows = []
    for images in map(int, args.images):
        compiled, n = vision_program(config, devices, images)
        mem = compiled.memory_analysis()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        rows.append((images, n, mem.temp_size_in_bytes))
        print(f"{images:3d} images, {n:6d} patches on {len(devices)} chips: per chip argument "
              f"{mem.argument_size_in_bytes / GIB:.2f} GiB, temporary {mem.temp_size_in_bytes / GIB:.2f} GiB, "
              f"output {mem.output_size_in_bytes / GIB:.2f} GiB, {cost.get('flops', float('nan')):.3g} FLOPs",
              flush=True)
    if len(rows) > 1:
        (i0, _, t0), (i1, _, t1) = rows[0], rows[-1]
        print(f"temporary bytes x{t1 / t0:.2f} for x{i1 / i0:.2f} images (linear: x{i1 / i0:.2f}, "
              f"quadratic: x{(i1 / i0) ** 2:.2f})")


if __name__ == "__main__":
    main()
