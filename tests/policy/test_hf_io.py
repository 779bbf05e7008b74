"""HF checkpoint import/export: round trip through transformers, determinism, bf16, typed errors."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors.numpy import load_file, save_file

from policy import hf_io
from policy.hf_io import (
    CheckpointError,
    CorruptFileError,
    MissingTensorsError,
    ShapeMismatchError,
    UnexpectedTensorsError,
    load_pretrained,
    save_pretrained,
)
from policy.model import forward_logits
from tests.policy import hf_fixtures as F


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_gqa")
    model = F.save_hf_model("gqa_untied", path)
    return path, model


def _inputs():
    rng = np.random.default_rng(0)
    pv, grid = F.pixel_inputs([[1, 4, 4]], seed=0)
    ids = np.array([F.text_tokens(rng, 2) + F.image_span(grid[0]) + F.text_tokens(rng, 4)])
    return ids, pv, grid


def _leaves(model):
    return {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model))}


@pytest.mark.parametrize("name,scan", [("gqa_untied", True), ("mqa_tied", False)])
def test_round_trip_through_transformers(tmp_path, name, scan):
    from transformers import Qwen3VLForConditionalGeneration

    src = tmp_path / "src"
    ref_model = F.save_hf_model(name, src)
    config, model = load_pretrained(src, scan_layers=scan)
    out = tmp_path / "out"
    names = save_pretrained(config, model, out, max_shard_bytes=20_000)  # force several shards
    assert len(names) > 1 and (out / hf_io.INDEX_FILE).exists()
    assert json.loads((out / "generation_config.json").read_text()) == config.generation_config()
    reloaded = Qwen3VLForConditionalGeneration.from_pretrained(str(out)).float().eval()
    ref_sd, new_sd = ref_model.state_dict(), reloaded.state_dict()
    assert set(ref_sd) == set(new_sd)
    for k in ref_sd:  # export is exact: same float32 tensors back
        assert torch.equal(ref_sd[k], new_sd[k]), k
    ids, pv, grid = _inputs()
    ref = F.hf_logits(ref_model, ids, pixel_values=pv, grid=grid)
    np.testing.assert_array_equal(F.hf_logits(reloaded, ids, pixel_values=pv, grid=grid), ref)
    assert F.rel_err(forward_logits(model, ids, pixel_values=pv, image_grid_thw=grid), ref) <= 1e-4


def test_second_load_is_bit_identical(hf_dir, tmp_path):
    path, _ = hf_dir
    _, a = load_pretrained(path)
    _, b = load_pretrained(path)
    la, lb = _leaves(a), _leaves(b)
    assert la.keys() == lb.keys()
    for k in la:
        np.testing.assert_array_equal(la[k], lb[k], err_msg=k)
    # save -> load is also bit-identical
    config, _ = load_pretrained(path)
    save_pretrained(config, a, tmp_path / "again")
    _, c = load_pretrained(tmp_path / "again")
    for k, v in _leaves(c).items():
        np.testing.assert_array_equal(v, la[k], err_msg=k)


def test_bf16_load(hf_dir):
    path, hf = hf_dir
    config, model = load_pretrained(path, dtype=jnp.bfloat16)
    assert config.dtype == config.param_dtype == "bfloat16"
    assert all(v.dtype == jnp.bfloat16 for v in jax.tree.leaves(nnx.state(model)))
    ids, pv, grid = _inputs()
    logits = forward_logits(model, ids, pixel_values=pv, image_grid_thw=grid)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    assert F.rel_err(logits, F.hf_logits(hf, ids, pixel_values=pv, grid=grid)) < 5e-2


def test_bf16_checkpoint_loads_in_float32(hf_dir, tmp_path):
    path, _ = hf_dir
    config, model = load_pretrained(path)
    save_pretrained(config, model, tmp_path / "bf16", dtype=jnp.bfloat16)
    f = hf_io.open_safetensors(str(tmp_path / "bf16" / hf_io.SINGLE_FILE))
    assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    _, m32 = load_pretrained(tmp_path / "bf16", dtype=jnp.float32)
    want = _leaves(model)
    for k, v in _leaves(m32).items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, want[k].astype(ml_dtypes.bfloat16).astype(np.float32), err_msg=k)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst, os.path.join(dst, hf_io.SINGLE_FILE)


def test_truncated_file_is_a_clear_error(hf_dir, tmp_path):
    d, f = _copy(hf_dir[0], tmp_path / "trunc")
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
        fh.truncate(size - 100)
    with pytest.raises(CorruptFileError, match="truncated or corrupt") as e:
        load_pretrained(d)
    assert "model.safetensors" in str(e.value)


def test_corrupted_header_is_a_clear_error(hf_dir, tmp_path):
    d, f = _copy(hf_dir[0], tmp_path / "corrupt")
    with open(f, "r+b") as fh:
        fh.seek(8)
        fh.write(b"\x00garbage{")
    with pytest.raises(CorruptFileError, match="model.safetensors"):
        load_pretrained(d)
    with open(f, "r+b") as fh:  # absurd header length
        fh.write((2**40).to_bytes(8, "little"))
    with pytest.raises(CorruptFileError, match="model.safetensors.*truncated or corrupt"):
        load_pretrained(d)


def _rewrite(path, edit):
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def test_missing_extra_and_misshaped_tensors(hf_dir, tmp_path):
    key = "model.language_model.layers.1.mlp.up_proj.weight"
    d, f = _copy(hf_dir[0], tmp_path / "missing")
    _rewrite(f, lambda t: t.pop(key))
    with pytest.raises(MissingTensorsError, match="up_proj"):
        load_pretrained(d)
    d, f = _copy(hf_dir[0], tmp_path / "extra")
    _rewrite(f, lambda t: t.update({"model.visual.surprise.weight": np.zeros(3, np.float32)}))
    with pytest.raises(UnexpectedTensorsError, match="surprise"):
        load_pretrained(d)
    d, f = _copy(hf_dir[0], tmp_path / "shape")
    _rewrite(f, lambda t: t.update({key: np.zeros((3, 3), np.float32)}))
    with pytest.raises(ShapeMismatchError, match="up_proj"):
        load_pretrained(d)
    assert issubclass(CheckpointError, ValueError)


def test_sharded_index_with_missing_shard(hf_dir, tmp_path):
    config, model = load_pretrained(hf_dir[0])
    names = save_pretrained(config, model, tmp_path / "sh", max_shard_bytes=20_000)
    os.remove(tmp_path / "sh" / names[-1])
    with pytest.raises(CheckpointError, match=names[-1]):
        load_pretrained(tmp_path / "sh")
