"""Host numpy batches -> global jax arrays on the mesh, on one host or many.

Rows (token ids, masks, M-RoPE positions, per-row values) are sharded over the
mesh's batch axes; each process contributes its own rows, and the global batch
is the processes' rows in process order. Image patches come packed in the
model's vision bins (`policy.vision.pack_pixels`) and are split over the mesh's
patch axes (`put_patches`: whole bins per chip when the bins divide the chips).
Every process holds every process's patches: they are all-gathered and
concatenated in process order (whole bins; frame ids made unique), so the
real patches keep the global row order that image tokens follow (the tower moves
the merged rows of real patches to the front). Every process calls this in step
with the others, and either every process's batch carries images or none does
(the gathers are collectives).
"""
from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from policy.sharding import data_sharding, logical_to_spec
from policy.vision import VisionInputs

_ZERO_PADDED = ("input_ids", "attention_mask", "target_mask")  # the rest (positions) repeat their last value


def device_batch(batch: dict, mesh) -> dict:
    """Place a host batch (this process's rows) on the mesh; see the module docstring."""
    batch = dict(batch)
    images = {k: batch.pop(k) for k in ("pixel_values", "vision") if batch.get(k) is not None}
    absent = {k: None for k, v in batch.items() if v is None}
    rows = {k: np.asarray(v) for k, v in batch.items() if v is not None}
    if jax.process_count() > 1:
        rows = _pad_sequences(rows)
        if "patch_start" in rows:  # this process's patches start after every earlier process's real ones
            counts = gather_rows(np.asarray([(np.asarray(images["vision"].segment_ids) >= 0).sum()]))
            rows["patch_start"] = rows["patch_start"] + int(counts[: jax.process_index()].sum())
        if images:
            images = dict(zip(("pixel_values", "vision"),
                              gather_patches(np.asarray(images["pixel_values"], np.float32), images["vision"])))
    out = {k: put_rows(v, mesh, _batch_axis(k)) for k, v in rows.items()}
    out.update(jax.tree.map(lambda x: put_patches(np.asarray(x), mesh), images))
    out.update(absent)
    return out


def patch_sharding(num_patches: int, ndim: int, mesh) -> NamedSharding:
    """Patches (leading axis) split over the mesh's patch axes as the vision tower splits them: in whole
    vision bins when the bins divide the chips (patches are packed in bins, `policy.vision.pack_pixels`)."""
    spec = logical_to_spec(("patches",), (num_patches,), mesh)
    return NamedSharding(mesh, PartitionSpec(*spec, *(None,) * (ndim - 1)))


def put_patches(x: np.ndarray, mesh) -> jax.Array:
    """A per-patch array every process holds in full, split as `patch_sharding` says (no mesh: one device)."""
    x = np.asarray(x)
    if mesh is None:
        return jax.numpy.asarray(x)
    return jax.make_array_from_callback(x.shape, patch_sharding(x.shape[0], x.ndim, mesh), lambda index: x[index])


def _batch_axis(key: str) -> int:
    return 1 if key == "positions" else 0


def put_rows(x: np.ndarray, mesh, batch_axis: int = 0) -> jax.Array:
    """This process's rows of a global array sharded over the mesh's batch axes (rows in process order)."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return jax.device_put(x, data_sharding(mesh, x.ndim, batch_axis, x.shape))
    global_shape = list(x.shape)
    global_shape[batch_axis] *= jax.process_count()
    sharding = data_sharding(mesh, x.ndim, batch_axis, tuple(global_shape))
    return jax.make_array_from_process_local_data(sharding, x, tuple(global_shape))


def process_rows(x: jax.Array, rows_per_process: int) -> np.ndarray:
    """This process's block of rows of a global array (all of it on a single host)."""
    if jax.process_count() == 1:
        return np.asarray(x)
    start = jax.process_index() * rows_per_process
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))[start:start + rows_per_process]


def gather_rows(x: np.ndarray) -> np.ndarray:
    """Every process's rows of a host array, concatenated in process order (the same on every process)."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x
    return np.asarray(multihost_utils.process_allgather(x)).reshape((-1,) + x.shape[1:])


def agreed_max(*values: int) -> tuple[int, ...]:
    """Elementwise maximum of these integers over all processes (they pick one static shape)."""
    if jax.process_count() == 1:
        return tuple(int(v) for v in values)
    gathered = np.asarray(multihost_utils.process_allgather(np.asarray(values, np.int64)))
    return tuple(int(v) for v in gathered.reshape(-1, len(values)).max(axis=0))


def _pad_sequences(rows: dict) -> dict:
    """Right-pad every per-token array to the longest sequence over processes (masked: changes nothing)."""
    length = rows["input_ids"].shape[1]
    (longest,) = agreed_max(length)
    out = {}
    for key, value in rows.items():
        if longest > length and value.ndim > _batch_axis(key) + 1:
            width = [(0, 0)] * value.ndim
            width[-1] = (0, longest - length)
            value = np.pad(value, width, mode="constant" if key in _ZERO_PADDED else "edge")
        out[key] = value
    return out


def gather_patches(pixel_values: np.ndarray, vision: VisionInputs) -> tuple[np.ndarray, VisionInputs]:
    """Every process's patches and per-patch metadata, concatenated in process order (each process's
    padded layout kept whole, so its vision bins stay whole); frame ids made unique."""
    fields = [pixel_values] + [np.asarray(x) for x in vision]
    (count,) = agreed_max(len(pixel_values))
    pad_fill = (0.0, 0, 0.0, 0, -1)  # vision_metadata's padding row
    padded = [np.concatenate([x, np.full((count - len(x),) + x.shape[1:], fill, x.dtype)])
              for x, fill in zip(fields, pad_fill)]
    every = [np.asarray(multihost_utils.process_allgather(x)) for x in padded]  # [processes, count, ...]
    segments = every[-1]
    real = segments >= 0
    frames = np.where(real, segments + 1, 0).max(axis=1)
    offsets = np.concatenate([[0], np.cumsum(frames)[:-1]])
    every[-1] = np.where(real, segments + offsets[:, None], -1).astype(segments.dtype)
    packed = [x.reshape((-1,) + x.shape[2:]) for x in every]
    return packed[0], VisionInputs(*packed[1:])
