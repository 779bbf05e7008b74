"""Visual-ERM SFT: sharded steps equal single-device ones; a SIGKILLed run resumes exactly."""
import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from policy import tiny_checkpoint
from policy.hf_io import load_pretrained
from policy.host_batch import device_batch
from policy.logprobs import sft_loss
from policy.optimizer import make_optimizer
from policy.processor import Processor
from policy.sharding import make_mesh
from policy.train_state import init_train_state, make_train_step, state_shardings
from tests.multihost import run_one_process, run_two_processes
from visual_erm import data as data_lib
from visual_erm import records
from visual_erm.prompts import judge_prompt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRITIQUES = [
    '{"errors": []}',
    '{"errors": [{"category": "text_error", "severity": 1, "location": "title", "description": "typo in the title"}]}',
    '{"errors": [{"category": "data_error", "severity": 3, "location": "bar 2", "description": "bar 2 is 40 not 10"}]}',
]


def examples(n, offset=0):
    out = []
    for i in range(offset, offset + n):
        ref = Image.new("RGB", (32, 24), (255, 255, 255))
        cand = Image.new("RGB", (24, 32), (200, (37 * i) % 255, 40))
        out.append(records.RewardExample(
            id=f"chart-{i}", kind=("chart", "table", "svg")[i % 3], source="test", seed=i,
            reference_png=records.png_bytes(ref), candidate_png=records.png_bytes(cand), reference_code="r",
            candidate_code="c", critique=CRITIQUES[i % 3], edits=()))
    return out


@pytest.fixture(scope="module")
def reward_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("erm")
    for split, n, offset in (("train", 24, 0), ("eval", 6, 1000)):
        os.makedirs(root / split)
        records.write_shard(str(root / split / records.SHARD_PATTERN.format(0)), examples(n, offset))
    return root


@pytest.mark.slow  # two SFT runs, ~35 s on 2 cores
def test_two_sft_steps_on_a_2x4_mesh_match_one_device(reward_data, tmp_path):
    texts = [judge_prompt(k) for k in ("chart", "table", "svg")] * 5 + CRITIQUES * 5
    config = tiny_checkpoint.build(str(tmp_path / "model"), texts, vocab_size=300, max_pixels=32 * 32)
    processor = Processor.from_pretrained(str(tmp_path / "model"))
    batches = list(data_lib.make_dataset(str(reward_data / "train"), processor, config, batch_size=8, num_epochs=1,
                                         seq_buckets=(512, 1024), patch_buckets=(1024,)))[:2]

    def run(mesh):
        _, model = load_pretrained(str(tmp_path / "model"), mesh=mesh)
        tx = make_optimizer({"learning_rate": 1e-3, "total_steps": 10})
        parts, state = init_train_state(model, tx, mesh=mesh)
        step = make_train_step(parts, tx, sft_loss, state_shardings(state))
        losses = []
        for batch in batches:
            state, metrics = step(state, device_batch(batch, mesh) if mesh else batch)
            losses.append(float(metrics["loss"]))
        return losses, state

    sharded_losses, sharded = run(make_mesh((1, 2, 4)))
    single_losses, single = run(None)
    np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(sharded.params), jax.tree.leaves(single.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_two_jax_distributed_processes_match_one_process(reward_data, tmp_path):
    """Two processes x 4 CPU devices, each feeding its own rows (and its own patch block), equal one
    process with 8 devices on the same global batches: losses, gradient norms, parameters."""
    texts = [judge_prompt(k) for k in ("chart", "table", "svg")] * 5 + CRITIQUES * 5
    tiny_checkpoint.build(str(tmp_path / "model"), texts, vocab_size=300, max_pixels=32 * 32)
    script = ("tests.visual_erm.multihost_sft", tmp_path / "model", reward_data / "train")
    run_one_process(*script, tmp_path / "single.json")
    run_two_processes(*script, tmp_path / "multi.json")
    one, two = (json.loads((tmp_path / name).read_text()) for name in ("single.json", "multi.json"))
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(two["sums"], one["sums"], rtol=1e-5, atol=1e-6)
