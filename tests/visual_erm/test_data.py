"""Reward records and the SFT input pipeline: loss mask, buckets, determinism, sharding, resume."""
import functools
import json
import os

import numpy as np
import pytest
from PIL import Image

from policy import tiny_checkpoint
from policy.config import Qwen3VLConfig
from policy.processor import Processor
from visual_erm import data as data_lib
from visual_erm import records
from visual_erm.prompts import judge_prompt

CRITIQUE = json.dumps({"errors": [{"category": "data_error", "severity": 2, "location": "bar 'Q3'",
                                   "description": "The bar for Q3 is 45 instead of 30"}]})


def example(i: int) -> records.RewardExample:
    ref = Image.new("RGB", (40 + 8 * (i % 3), 32), (255, 255, 255))
    cand = Image.new("RGB", (40, 32 + 8 * (i % 2)), (250, 10 * i % 255, 0))
    return records.RewardExample(
        id=f"chart-{i}", kind=("chart", "table", "svg")[i % 3], source="test", seed=i,
        reference_png=records.png_bytes(ref), candidate_png=records.png_bytes(cand),
        reference_code="ref", candidate_code="cand", critique=CRITIQUE if i % 2 else '{"errors": []}',
        edits=("change_data_value",) if i % 2 else (),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    texts = [judge_prompt(k) for k in ("chart", "table", "svg")] * 10 + [CRITIQUE] * 10
    model_dir = str(root / "model")
    config = tiny_checkpoint.build(model_dir, texts, vocab_size=400, max_pixels=32 * 32)
    folder = str(root / "records")
    os.makedirs(folder)
    records.write_shard(os.path.join(folder, records.SHARD_PATTERN.format(0)), [example(i) for i in range(6)])
    records.write_shard(os.path.join(folder, records.SHARD_PATTERN.format(1)), [example(i) for i in range(6, 10)])
    return config, Processor.from_pretrained(model_dir), folder


def test_records_round_trip_and_reject_garbage(setup):
    _, _, folder = setup
    read = list(records.read_examples(folder))
    assert [e.id for e in read] == [f"chart-{i}" for i in range(10)]
    assert read[3] == example(3)
    with pytest.raises(records.RecordError, match="record 7"):
        records.decode(b"\x93not a record", "record 7")
    with pytest.raises(records.RecordError, match="no reward"):
        list(records.read_examples(os.path.dirname(folder)))


def test_target_mask_covers_exactly_the_critique_tokens(setup):
    _, processor, _ = setup
    features = data_lib.example_features(example(1), processor)
    ids, mask = features["input_ids"], features["target_mask"]
    # Hand-built expectation: the prompt as the processor builds it, then the critique and <|im_end|>.
    prompt = processor(data_lib.judge_messages("table", *example(1).images()), seq_buckets=None, patch_buckets=None)
    critique_ids = processor.tokenizer(CRITIQUE, add_special_tokens=False)["input_ids"]
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    expected = np.concatenate([prompt["input_ids"][0], critique_ids, [im_end]])
    np.testing.assert_array_equal(ids, expected)
    n_prompt = prompt["input_ids"].shape[1]
    assert len(mask) == len(ids) - 1  # target t is ids[t + 1]
    assert mask[:n_prompt - 1].sum() == 0 and mask[n_prompt - 1:].all() and mask.sum() == len(critique_ids) + 1
    assert processor.tokenizer.decode(ids[1:][mask == 1]) == CRITIQUE + "<|im_end|>"
    assert processor.tokenizer.decode(prompt["input_ids"][0]).endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_collator_pads_to_buckets(setup):
    config, processor, _ = setup
    collate = data_lib.Collator(config, processor.pad_token_id, seq_buckets=(512, 1024), patch_buckets=(256, 512))
    batch = collate([data_lib.example_features(example(i), processor) for i in range(3)])
    assert batch["input_ids"].shape == (3, 512) and batch["positions"].shape == (3, 3, 512)
    assert batch["pixel_values"].shape[0] in (256, 512)
    assert batch["vision"].segment_ids.shape[0] == batch["pixel_values"].shape[0]
    lengths = batch["attention_mask"].sum(1)
    assert (batch["input_ids"][0, lengths[0]:] == processor.pad_token_id).all()  # right padding
    assert (batch["target_mask"] <= batch["attention_mask"][:, 1:]).all()


def _ids(dataset, n):
    it = iter(dataset.to_iter_dataset())
    return [tuple(next(it)["input_ids"][:, :60].sum(1)) for _ in range(n)]


def test_dataset_is_deterministic_sharded_and_resumable(setup):
    config, processor, folder = setup
    make = functools.partial(data_lib.make_dataset, folder, processor, config, batch_size=2,
                             seq_buckets=(512, 1024), patch_buckets=(256, 512))
    assert _ids(make(seed=3), 4) == _ids(make(seed=3), 4)
    assert _ids(make(seed=3), 4) != _ids(make(seed=4), 4)
    source = data_lib.RewardSource(folder)
    first = [source[i].id for i in range(len(source))]
    shard0 = make(seed=3, process_index=0, process_count=2, num_epochs=1)
    shard1 = make(seed=3, process_index=1, process_count=2, num_epochs=1)
    assert len(shard0) == len(shard1) == 2 and len(first) == 10
    it = iter(make(seed=3).to_iter_dataset())
    next(it), next(it)
    state = it.get_state()
    expected = next(it)
    resumed = iter(make(seed=3).to_iter_dataset())
    resumed.set_state(state)
    np.testing.assert_array_equal(next(resumed)["input_ids"], expected["input_ids"])


def test_tiny_checkpoint_keeps_qwen_special_tokens(setup):
    config, processor, _ = setup
    tok = processor.tokenizer
    assert isinstance(config, Qwen3VLConfig)
    assert config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert tok.decode(tok("<|im_start|>user\nhi<|im_end|>")["input_ids"]) == "<|im_start|>user\nhi<|im_end|>"
    assert config.text.vocab_size == len(tok)
