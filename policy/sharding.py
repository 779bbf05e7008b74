"""Logical axis names, the ONE logical->mesh rules table, mesh construction and sharding helpers.

Why: parameters and activations are annotated with *logical* names (`embed`, `heads`, ...); only
`RULES` below knows the mesh axes (`data`, `fsdp`, `tensor`). Changing the parallelism layout is a
one-line edit here. A logical axis whose size does not divide evenly over its mesh axes falls back to
replication on that dimension, so tiny test models shard on any mesh.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

# Logical axis -> mesh axis (or tuple of mesh axes, or None = replicated). The only place mesh axes
# are named.
RULES: dict[str, Any] = {
    # activations
    "batch": ("data", "fsdp"),
    "length": None,
    "cache_length": None,
    "act_embed": None,
    "act_heads": "tensor",
    "act_kv_heads": "tensor",
    "act_mlp": "tensor",
    "act_vocab": "tensor",
    "patches": ("data", "fsdp"),  # vision work: each chip encodes its share of the patches
    "act_vision_heads": "tensor",
    # text parameters
    "vocab": "tensor",
    "embed": "fsdp",
    "mlp": "tensor",
    "heads": "tensor",
    "kv_heads": "tensor",
    "head_dim": None,
    "norm": None,
    "layers": None,
    # vision parameters
    "vision_embed": "fsdp",
    "vision_mlp": "tensor",
    "vision_heads": "tensor",
    "vision_head_dim": None,
    "vision_patch": None,
    "vision_pos": None,
    "vision_merged": "fsdp",
    "qkv": None,
}

# The layout a weight is used in: no parameter dimension on the batch axes (`fsdp`); weights stay
# tensor-parallel over `tensor` (replicated when the mesh has no `tensor` extent). Activations keep
# RULES' names. The sampler holds its weights so (it reshards into it once per `generate`: an
# all-gather of the weights per rollout instead of one per token), and every `Dense` gathers its
# kernel into it before the product (`gather_weight`).
SAMPLING_RULES: dict[str, Any] = {**RULES, "embed": None, "vision_embed": None, "vision_merged": None}


def sampling_mesh(mesh: Mesh, kv_heads: int) -> Mesh:
    """The sampler's mesh: `mesh`'s devices in the same order, each slice's (fsdp, tensor) devices regrouped
    so that `tensor` spans `kv_heads` chips (the rest batch rows). Why: SAMPLING_RULES keeps no weight
    dimension on the batch axes, so on an all-fsdp training mesh every chip would hold and read the whole
    model each decode step; with a tensor axis of the KV-head count, a chip holds 1/kv_heads of the
    weights and its rows' KV cache of one head group. `mesh` itself when its tensor extent is already at
    least `kv_heads` or the devices of a slice are not a multiple of it (tiny models, a few CPU devices)."""
    if tuple(mesh.axis_names) != MESH_AXES:
        return mesh
    data, fsdp, tensor = mesh.devices.shape
    if kv_heads <= tensor or (fsdp * tensor) % kv_heads:
        return mesh
    return Mesh(mesh.devices.reshape(data, fsdp * tensor // kv_heads, kv_heads), MESH_AXES)


def num_slices(devices: Sequence[jax.Device]) -> int:
    """TPU slices the devices span (joined by the data-center network, DCN); 1 off multi-slice TPU."""
    return len({getattr(d, "slice_index", 0) for d in devices})


def make_mesh(shape: Sequence[int] | None = None, axis_names: Sequence[str] = MESH_AXES,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A device mesh; default puts every device on `fsdp` (shape (1, n, 1)). Devices of several TPU
    slices split the first axis (`data`) over the slices: only data parallelism crosses DCN, and every
    other axis stays inside a slice (default shape (slices, n / slices, 1))."""
    devices = list(jax.devices() if devices is None else devices)
    axis_names = tuple(axis_names)
    slices = num_slices(devices)
    if shape is None:
        shape = tuple(len(devices) // slices if a == "fsdp" else 1 for a in axis_names)
        if "fsdp" not in axis_names:
            shape = (len(devices) // slices,) + (1,) * (len(axis_names) - 1)
        shape = (shape[0] * slices,) + shape[1:]
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(axis_names):
        raise ValueError(f"mesh shape {shape} does not match axis names {axis_names}")
    if math.prod(shape) != len(devices):
        raise ValueError(f"mesh shape {shape} needs {math.prod(shape)} devices, have {len(devices)}")
    if slices > 1:
        if shape[0] % slices:
            raise ValueError(f"mesh shape {shape}: its first axis ({axis_names[0]}) must be a multiple of the "
                             f"{slices} TPU slices, the only axis that crosses DCN")
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_hybrid_device_mesh((shape[0] // slices,) + shape[1:],
                                                    (slices,) + (1,) * (len(shape) - 1), devices)
        return Mesh(grid, axis_names)
    return Mesh(np.asarray(devices, dtype=object).reshape(shape), axis_names)


def mesh_from_config(config) -> Mesh:
    """`config.mesh_shape` (data, fsdp, tensor) over the first that many devices; (): all on fsdp."""
    shape = config.mesh_shape
    if not shape:
        return make_mesh()
    return make_mesh(tuple(shape), devices=jax.devices()[: math.prod(shape)])


def _mesh_axes_of(name: str | None, mesh: Mesh, rules: dict[str, Any]) -> tuple[str, ...]:
    if name is None:
        return ()
    if name not in rules:
        raise KeyError(f"logical axis {name!r} has no entry in policy.sharding.RULES")
    target = rules[name]
    if target is None:
        return ()
    target = (target,) if isinstance(target, str) else tuple(target)
    return tuple(a for a in target if a in mesh.axis_names)


def logical_to_spec(names: Sequence[str | None], shape: Sequence[int] | None, mesh: Mesh,
                    rules: dict[str, Any] = RULES) -> PartitionSpec:
    """PartitionSpec for an array with the given logical axis names on `mesh` (under `rules`).

    Mesh axes already used by an earlier dimension, or that do not divide the dimension, are dropped.
    """
    used: set[str] = set()
    out = []
    for i, name in enumerate(names):
        axes = [a for a in _mesh_axes_of(name, mesh, rules) if a not in used and mesh.shape[a] > 1]
        if shape is not None:
            kept = []
            size = shape[i]
            for a in axes:
                if size % (mesh.shape[a] * math.prod(mesh.shape[k] for k in kept)) == 0:
                    kept.append(a)
            axes = kept
        used.update(axes)
        out.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
    return PartitionSpec(*out)


def named_sharding(names: Sequence[str | None], shape: Sequence[int] | None, mesh: Mesh,
                   rules: dict[str, Any] = RULES) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(names, shape, mesh, rules))


def _var_names(v: nnx.Variable, ndim: int) -> tuple:
    names = v.get_metadata().get("logical_axes")
    if names is None:
        return (None,) * ndim
    if len(names) != ndim:
        raise ValueError(f"logical_axes {names} do not match rank {ndim}")
    return tuple(names)


def state_shardings(state: nnx.State, mesh: Mesh, rules: dict[str, Any] = RULES) -> nnx.State:
    """NamedSharding for every Variable of an (abstract or concrete) NNX state, from `logical_axes`
    under `rules` (RULES: training's layout; SAMPLING_RULES: the sampler's)."""
    def f(v):
        if isinstance(v, nnx.Variable):
            shape = v.shape
            return v.replace(named_sharding(_var_names(v, len(shape)), shape, mesh, rules))
        return NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(f, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def constrain(x: jax.Array, names: Sequence[str | None], rules: dict[str, Any] = RULES) -> jax.Array:
    """`with_sharding_constraint` by logical names under the ambient mesh; no-op without one."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty or not mesh.axis_names:
        return x
    spec = logical_to_spec(names, x.shape, mesh, rules)
    return jax.lax.with_sharding_constraint(x, spec)


def gather_weight(kernel: jax.Array, names: Sequence[str | None]) -> jax.Array:
    """A weight as a matmul uses it: gathered over the batch axes (FSDP's all-gather per layer, whose
    transpose reduce-scatters the gradient). Why explicit: left to choose, XLA:TPU splits an FSDP
    product over its contracting dimension into a loop that adds every partial product into the whole
    output (a windowed einsum): at 8,192 tokens a row that re-reads and re-writes a layer's [rows,
    tokens, 12,288] MLP activations 16 times, most of the 8B log-prob program's 20 TB per chip."""
    return constrain(kernel, names, SAMPLING_RULES)


def data_sharding(mesh: Mesh, ndim: int, batch_axis: int = 0, shape: Sequence[int] | None = None) -> NamedSharding:
    """Sharding for a host batch: `batch` on `batch_axis`, everything else replicated."""
    names = [None] * ndim
    names[batch_axis] = "batch"
    return named_sharding(names, shape, mesh)


def batch_shards(mesh: Mesh) -> int:
    """How many ways the `batch` logical axis splits over `mesh` (a batch that is a multiple shards evenly)."""
    return math.prod(mesh.shape[a] for a in _mesh_axes_of("batch", mesh, RULES))
