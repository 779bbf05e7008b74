"""`python -m launch.export_hf`: a hand-made SFT-style run directory -> a Hugging Face directory that
transformers loads with the same logits as ours, the base tokenizer files beside it, and clear errors
(or a fall back to an older step) for missing and corrupt checkpoints."""
import glob
import json
import logging
import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from launch import export_hf
from policy import tiny_checkpoint
from policy.checkpointing import Checkpointer, write_config
from policy.export import CheckpointNotFoundError, CheckpointRestoreError
from policy.hf_io import load_pretrained
from policy.model import forward_logits
from policy.optimizer import make_optimizer
from policy.processor import Processor
from policy.train_state import init_train_state, merge_model
from visual_erm.prompts import judge_prompt, policy_prompt

TOL = 1e-4  # max |diff| relative to the logit scale
TEXTS = [policy_prompt(k) for k in ("chart", "table", "svg")] * 5 + [judge_prompt("svg")] * 5


def run_config(base_dir: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.trainer = "visual_erm_sft"
    c.seed = 0
    c.model = ml_collections.ConfigDict({"checkpoint": base_dir, "dtype": "float32", "vocab_size": 320})
    c.optimizer = ml_collections.ConfigDict({"learning_rate": 1e-3, "total_steps": 10})
    return c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """workdir with config.json and checkpoints at steps 5 and 7 (differently perturbed parameters)."""
    root = tmp_path_factory.mktemp("export")
    base = str(root / "base")
    tiny_checkpoint.build(base, TEXTS, vocab_size=320, max_pixels=32 * 32)
    workdir = str(root / "run")
    config = run_config(base)
    write_config(workdir, config)
    _, model = load_pretrained(base)
    tx = make_optimizer(config.optimizer)
    parts, state = init_train_state(model, tx, seed=0)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    params = {}
    for step in (5, 7):
        noise = jax.tree.map(lambda x, k: 0.05 * jax.random.normal(k, x.shape, x.dtype), state.params,
                             _keys(state.params, step))
        params[step] = jax.tree.map(lambda x, n: x + n, state.params, noise)
        ckpt.save(step, state.replace(params=params[step]), {"data": {"position": step}})
    ckpt.close()
    models = {s: merge_model(parts, p) for s, p in params.items()}
    return {"root": root, "base": base, "workdir": workdir, "models": models}


def _keys(tree, seed):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(jax.random.key(seed), len(leaves))))


def model_inputs(path: str):
    processor = Processor.from_pretrained(path)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8))
    messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                             {"type": "text", "text": policy_prompt("svg")}]}]
    batch = processor([messages])
    return batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["image_grid_thw"], processor


def hf_logits(path: str, ids, mask, pixels, grid, image_token_id):
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    model = Qwen3VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(input_ids=torch.as_tensor(ids, dtype=torch.long), attention_mask=torch.as_tensor(mask),
                    pixel_values=torch.as_tensor(pixels), image_grid_thw=torch.as_tensor(grid),
                    mm_token_type_ids=torch.as_tensor((np.asarray(ids) == image_token_id).astype(np.int64)))
    return out.logits.float().numpy()


def rel_err(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-12))


def test_export_loads_in_transformers_with_our_logits(run, tmp_path):
    out = str(tmp_path / "hf")
    result = export_hf.main([f"--checkpoint={run['workdir']}", f"--out={out}", "--max_shard_gb=0.00003"])
    assert result["step"] == 7 and result["trainer"] == "visual_erm_sft" and result["base_model"] == run["base"]
    assert len(result["weights"]) > 1 and os.path.exists(os.path.join(out, "model.safetensors.index.json"))
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "preprocessor_config.json", "README.md"):
        assert os.path.exists(os.path.join(out, name)), name
    ids, mask, pixels, grid, processor = model_inputs(out)
    ours = forward_logits(run["models"][7], ids, mask, pixels, grid)
    theirs = hf_logits(out, ids, mask, pixels, grid, processor.image_token_id)
    err = rel_err(ours, theirs)
    print(f"[export] transformers vs ours on the restored step-7 parameters: rel max|diff| = {err:.2e}")
    assert err <= TOL
    assert rel_err(ours, forward_logits(run["models"][5], ids, mask, pixels, grid)) > 1e-3  # steps differ

    from transformers import AutoTokenizer

    exported = AutoTokenizer.from_pretrained(out, local_files_only=True)
    original = AutoTokenizer.from_pretrained(run["base"], local_files_only=True)
    text = policy_prompt("table") + "<|im_end|>"
    assert exported(text)["input_ids"] == original(text)["input_ids"]
    card = open(os.path.join(out, "README.md"), encoding="utf-8").read()
    assert "visual_erm_sft" in card and "| step | 7 |" in card and run["workdir"] in card
    run_config_text = open(os.path.join(run["workdir"], "run_config.json")).read()
    assert json.dumps(json.loads(run_config_text), indent=1, sort_keys=True) in card
    with pytest.raises(SystemExit, match="already holds a model"):  # never overwrites a model
        export_hf.main([f"--checkpoint={run['workdir']}", f"--out={out}"])


def test_step_folder_exports_exactly_that_step(run, tmp_path):
    out = str(tmp_path / "hf5")
    result = export_hf.main([f"--checkpoint={run['workdir']}/checkpoints/5", f"--out={out}"])
    assert result["step"] == 5
    _, reloaded = load_pretrained(out)
    for a, b in zip(jax.tree.leaves(jax.tree.map(np.asarray, _params(reloaded))),
                    jax.tree.leaves(jax.tree.map(np.asarray, _params(run["models"][5])))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="contradicts"):
        export_hf.main([f"--checkpoint={run['workdir']}/checkpoints/5", "--step=7", f"--out={tmp_path / 'x'}"])


def _params(model):
    from policy.train_state import split_model

    return split_model(model)[1]


def test_base_model_follows_the_trainer():
    grpo = {"trainer": "grpo", "model": {"checkpoint": ""}}
    assert export_hf.base_model_dir(grpo, "/w") == "/w/untrained_base_policy"
    assert export_hf.base_model_dir({"trainer": "visual_erm_sft", "model": {}}, "/w") == "/w/base_model"
    assert export_hf.base_model_dir({"trainer": "grpo", "model": {"checkpoint": "/hf"}}, "/w") == "/hf"
    with pytest.raises(ValueError, match="trainer 'dpo'"):
        export_hf.base_model_dir({"trainer": "dpo"}, "/w")


def test_missing_and_corrupt_checkpoints(run, tmp_path, caplog):
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    write_config(str(empty), run_config(run["base"]))
    with pytest.raises(CheckpointNotFoundError, match="no orbax checkpoints"):
        export_hf.main([f"--checkpoint={empty}", f"--out={tmp_path / 'a'}"])
    with pytest.raises(SystemExit, match="nowhere does not exist"):
        export_hf.main([f"--checkpoint={tmp_path / 'nowhere'}", f"--out={tmp_path / 'a'}"])
    with pytest.raises(SystemExit, match="--dtype=int8: value should be one of"):
        export_hf.main([f"--checkpoint={run['workdir']}", f"--out={tmp_path / 'a'}", "--dtype=int8"])
    with pytest.raises(CheckpointNotFoundError, match="saved steps: \\[5, 7\\]"):
        export_hf.main([f"--checkpoint={run['workdir']}", "--step=6", f"--out={tmp_path / 'a'}"])
    # Truncate every data file of step 7: the newest readable step (5) is exported instead.
    broken = tmp_path / "broken"
    shutil.copytree(run["workdir"], broken)
    for path in glob.glob(str(broken / "checkpoints" / "7" / "state" / "**" / "*"), recursive=True):
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        result = export_hf.main([f"--checkpoint={broken}", f"--out={tmp_path / 'b'}"])
    assert result["step"] == 5 and "unreadable" in caplog.text
    with pytest.raises(CheckpointRestoreError, match="step 7"):
        export_hf.main([f"--checkpoint={broken}", "--step=7", f"--out={tmp_path / 'c'}"])
    assert not os.path.exists(tmp_path / "c")
    os.remove(broken / "run_config.json")
    with pytest.raises(FileNotFoundError, match="run_config.json is missing"):
        export_hf.main([f"--checkpoint={broken}", f"--out={tmp_path / 'd'}"])
    assert export_hf.main([f"--checkpoint={broken}", f"--base_model={run['base']}",
                           f"--out={tmp_path / 'd'}"])["step"] == 5
