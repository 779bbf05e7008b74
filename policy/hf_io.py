"""Load and save Hugging Face Qwen3-VL checkpoints (single or sharded safetensors with an index).

Files are read and written with the `safetensors` library (its numpy API: memory-mapped reads, bf16
through `ml_dtypes`). On top of it: each device shard is built from only the tensors it needs via
`jax.make_array_from_callback`, so the whole model never sits in host memory at once; export streams
one tensor at a time into shards of bounded size; and every failure is a typed `CheckpointError`
naming the file and tensor. The key layout comes from the single table in `policy.hf_keys`.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, SingleDeviceSharding
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from policy import hf_keys
from policy.config import Qwen3VLConfig
from policy.model import Qwen3VL, abstract_model
from policy.sharding import state_shardings

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint directory or file cannot be turned into this model's parameters."""


class CorruptFileError(CheckpointError):
    """A safetensors file is truncated or its header is malformed."""


class MissingTensorsError(CheckpointError):
    """Tensors the model needs are absent from the checkpoint."""


class UnexpectedTensorsError(CheckpointError):
    """The checkpoint has tensors this model has no place for."""


class ShapeMismatchError(CheckpointError):
    """A tensor exists but has the wrong shape for this config."""


# ---------------------------------------------------------------------------------------------
# safetensors files
# ---------------------------------------------------------------------------------------------
def open_safetensors(path: str):
    """`safetensors.safe_open` (numpy) on one file; a truncated or malformed file is a CorruptFileError."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return safe_open(path, framework="np")
    except SafetensorError as e:
        raise CorruptFileError(f"{path}: not a readable safetensors file, truncated or corrupt ({e})") from e


class CheckpointReader:
    """All tensors of a HF checkpoint directory (single file or index + shards)."""

    def __init__(self, path: str):
        self.path = path
        index = os.path.join(path, INDEX_FILE)
        if os.path.exists(index):
            try:
                with open(index) as f:
                    weight_map = json.load(f)["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise CorruptFileError(f"{index}: malformed index ({e})") from e
            files = sorted(set(weight_map.values()))
        elif os.path.exists(os.path.join(path, SINGLE_FILE)):
            files, weight_map = [SINGLE_FILE], None
        else:
            raise CheckpointError(f"{path}: no {SINGLE_FILE} or {INDEX_FILE}")
        self.files = {name: open_safetensors(os.path.join(path, name)) for name in files}
        self.where: dict[str, str] = {key: name for name, f in self.files.items() for key in f.keys()}
        if weight_map is not None:
            lost = sorted(k for k, fname in weight_map.items() if self.where.get(k) != fname)
            if lost:
                raise CorruptFileError(f"{index} lists tensors not found in their shard file: {lost[:5]}"
                                       f"{' ...' if len(lost) > 5 else ''}")

    def keys(self) -> set[str]:
        return set(self.where)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.files[self.where[key]].get_slice(key).get_shape())

    def get(self, key: str) -> np.ndarray:
        name = self.where[key]
        try:
            return self.files[name].get_tensor(key)
        except SafetensorError as e:
            raise CorruptFileError(f"{os.path.join(self.path, name)}: tensor {key!r} unreadable ({e})") from e


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------
def _flat(state) -> dict[str, nnx.Variable]:
    return {".".join(str(p) for p in path): var for path, var in nnx.to_flat_state(state)}


def _dtype_name(dtype) -> str:
    return jnp.dtype(dtype).name


def load_pretrained(path: str | os.PathLike, *, dtype=jnp.float32, mesh: Mesh | None = None,
                    scan_layers: bool = False, remat: str = "none", param_dtype=None,
                    cache_bytes: int = 2**30, attention_impl: str = "auto",
                    vision_bin: int = 0) -> tuple[Qwen3VLConfig, Qwen3VL]:
    """Read a HF Qwen3-VL directory into a (config, model) pair.

    `dtype` is the compute dtype and (unless `param_dtype` is given) the storage dtype. With `mesh`,
    every parameter is created directly in its NamedSharding (from `policy.sharding.RULES`), each
    device shard read from the memory-mapped file; without, everything lands on the first device.
    Host memory peaks at about one parameter: per parameter, transformed HF tensors are memoised up
    to `cache_bytes` so the shards of one parameter do not re-transpose the same tensor. `vision_bin`:
    patches per vision attention bin (`Qwen3VLConfig.vision_bin`; 0: one bin per call).
    """
    path = os.fspath(path)
    config = Qwen3VLConfig.from_hf(path, dtype=_dtype_name(dtype),
                                   param_dtype=_dtype_name(param_dtype or dtype), scan_layers=scan_layers, remat=remat,
                                   attention_impl=attention_impl, vision_bin=vision_bin)
    reader = CheckpointReader(path)
    abstract = abstract_model(config)
    graphdef, abs_state = nnx.split(abstract)
    flat = _flat(abs_state)
    shardings = _flat(state_shardings(abs_state, mesh)) if mesh is not None else None
    plan = {e.ours: e for e in hf_keys.entries(config)}

    if set(plan) != set(flat):  # the table and the module tree must agree: a bug, not a bad file
        raise RuntimeError(f"hf_keys table out of sync with the model: {sorted(set(plan) ^ set(flat))[:8]}")
    needed = {k for e in plan.values() for k in e.hf_keys}
    have = reader.keys()
    missing = sorted(needed - have)
    if missing:
        raise MissingTensorsError(f"{path}: {len(missing)} tensors missing, e.g. {missing[:5]}")
    extra = sorted(have - needed - hf_keys.ignorable_hf_keys(config))
    if extra:
        raise UnexpectedTensorsError(f"{path}: {len(extra)} unexpected tensors, e.g. {extra[:5]}")

    target = jnp.dtype(config.param_dtype)
    values = {}
    for name, var in flat.items():
        e = plan[name]
        shape = tuple(var.shape)
        layer_shape = shape[1:] if e.stacked else shape
        want = hf_keys.hf_shape(e.rule, layer_shape, config)
        for k in e.hf_keys:
            if reader.shape(k) != want:
                raise ShapeMismatchError(f"{path}: tensor {k!r} has shape {list(reader.shape(k))}, "
                                         f"this config needs {list(want)} (for {name})")

        memo: dict[str, np.ndarray] = {}  # transformed tensors of THIS parameter, byte-bounded

        def load_layer(k, e=e, layer_shape=layer_shape, memo=memo):
            if k in memo:
                return memo[k]
            a = np.asarray(hf_keys.TO_OURS[e.rule.transform](reader.get(k), layer_shape, e.rule)).astype(target)
            if sum(x.nbytes for x in memo.values()) + a.nbytes <= cache_bytes:
                memo[k] = a
            return a

        def callback(index, e=e, shape=shape, load_layer=load_layer):
            index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
            if e.stacked:
                layers = range(*index[0].indices(shape[0]))
                return hf_keys.stack_layers([load_layer(e.hf_keys[i])[index[1:]] for i in layers])
            return load_layer(e.hf_keys[0])[index]

        sharding = shardings[name].get_value() if shardings is not None else SingleDeviceSharding(jax.devices()[0])
        values[name] = jax.make_array_from_callback(shape, sharding, callback)
        memo.clear()

    state = nnx.from_flat_state([(path_, var.replace(values[".".join(str(p) for p in path_)]))
                                 for path_, var in nnx.to_flat_state(abs_state)])
    return config, nnx.merge(graphdef, state)


# ---------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------
def _to_host(x) -> np.ndarray:
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils
        x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))


def hf_tensors(config: Qwen3VLConfig, model: Qwen3VL, dtype=None):
    """Yield (hf_key, numpy array) one tensor at a time, in table order."""
    flat = _flat(nnx.state(model))
    out_dtype = np.dtype(jnp.dtype(dtype)) if dtype is not None else None
    for e in hf_keys.entries(config):
        arr = flat[e.ours].get_value()
        layers = hf_keys.unstack_layers(arr) if e.stacked else [arr]
        for k, a in zip(e.hf_keys, layers):
            a = _to_host(a)
            shape = hf_keys.hf_shape(e.rule, a.shape, config)
            t = hf_keys.TO_HF[e.rule.transform](a, shape, e.rule)
            yield k, np.ascontiguousarray(t.astype(out_dtype) if out_dtype is not None else t)


def save_pretrained(config: Qwen3VLConfig, model: Qwen3VL, path: str | os.PathLike, *,
                    max_shard_bytes: int = 5 * 2**30, dtype=None) -> list[str]:
    """Write sharded safetensors + index, config.json and generation_config.json.

    The result loads with `transformers.Qwen3VLForConditionalGeneration.from_pretrained(path)`.
    Tensors are gathered one at a time and each full shard is written (under a temporary name, renamed
    once the shard count is known), so host memory holds at most one shard. Only process 0 writes.
    Returns the weight file names.
    """
    path = os.fspath(path)
    write = jax.process_index() == 0
    if write:
        os.makedirs(path, exist_ok=True)
    tmp_names: list[str] = []
    keys_per_shard: list[list[str]] = []
    shard: dict[str, np.ndarray] = {}
    size = total = 0

    def flush():
        name = f".tmp-shard-{len(tmp_names):05d}.safetensors"
        if write:
            save_file(shard, os.path.join(path, name), metadata={"format": "pt"})
        tmp_names.append(name)
        keys_per_shard.append(sorted(shard))

    for k, a in hf_tensors(config, model, dtype):
        nbytes = a.size * a.dtype.itemsize
        if shard and size + nbytes > max_shard_bytes:
            flush()
            shard, size = {}, 0
        shard[k] = a
        size += nbytes
        total += nbytes
    flush()
    n = len(tmp_names)
    names = [SINGLE_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    if not write:
        return names
    for tmp, name in zip(tmp_names, names):
        os.chmod(os.path.join(path, tmp), 0o644)  # safetensors creates files owner-only; a model is for sharing
        os.replace(os.path.join(path, tmp), os.path.join(path, name))
    index = os.path.join(path, INDEX_FILE)
    if n > 1:
        weight_map = {k: name for name, keys in zip(names, keys_per_shard) for k in keys}
        with open(index, "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    elif os.path.exists(index):
        os.remove(index)
    hf = config.to_hf()
    if dtype is not None:
        hf["dtype"] = _dtype_name(dtype)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf, f, indent=2)
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump(config.generation_config(), f, indent=2)
    return names
