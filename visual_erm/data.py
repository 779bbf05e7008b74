"""The Visual-ERM SFT input pipeline: reward records -> padded, bucketed token batches.

grain gives what a pod run needs: a deterministic order from a seed, a shard
per process (`process_index::process_count`), and an iterator whose state goes
into the orbax checkpoint so a resumed run sees the same batches. Each example
becomes the judge prompt (reference image, rendered image, instruction) and the
target critique; the loss mask covers the critique tokens and the `<|im_end|>`
that closes them (so the judge learns to stop), nothing of the prompt.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grain
import numpy as np

from policy.image_processor import pick_bucket
from policy.model import prepare_inputs
from policy.vision import pack_pixels
from visual_erm import records
from visual_erm.prompts import judge_messages

DEFAULT_SEQ_BUCKETS = (256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
DEFAULT_PATCH_BUCKETS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


class RewardSource(grain.sources.RandomAccessDataSource):
    """Random access to the RewardExamples at a location: a make_data folder or a TFDS split
    ("tfds:visual_erm_reward/small:train@DATA_DIR"); see `records.reward_source`."""

    def __init__(self, location: str):
        self._source = records.reward_source(location)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> records.RewardExample:
        return self._source[index]


def example_features(example: records.RewardExample, processor) -> dict:
    """Prompt + critique token ids, target mask, patches and grids of one example (unpadded).

    target_mask[t] says whether input_ids[t + 1] (the token predicted at t) is a critique token."""
    reference, candidate = example.images()
    prompt = processor(judge_messages(example.kind, reference, candidate), add_generation_prompt=True,
                       seq_buckets=None, patch_buckets=None)
    prompt_ids = prompt["input_ids"][0]
    target_ids = processor.tokenizer(example.critique + "<|im_end|>", add_special_tokens=False)["input_ids"]
    input_ids = np.concatenate([prompt_ids, np.asarray(target_ids, np.int32)])
    target_mask = np.zeros(len(input_ids) - 1, np.int32)
    target_mask[len(prompt_ids) - 1:] = 1
    return {"input_ids": input_ids, "target_mask": target_mask, "pixel_values": prompt["pixel_values"],
            "image_grid_thw": prompt["image_grid_thw"], "id": example.id, "kind": example.kind}


@dataclasses.dataclass(frozen=True)
class Collator:
    """Right-pads a list of example features to static bucketed shapes for the jitted step."""

    model_config: object
    pad_id: int
    seq_buckets: Sequence[int] = DEFAULT_SEQ_BUCKETS
    patch_buckets: Sequence[int] = DEFAULT_PATCH_BUCKETS

    def __call__(self, features: Sequence[dict]) -> dict:
        length = pick_bucket(max(len(f["input_ids"]) for f in features), self.seq_buckets)
        input_ids = np.full((len(features), length), self.pad_id, np.int32)
        attention_mask = np.zeros((len(features), length), np.int32)
        target_mask = np.zeros((len(features), length - 1), np.int32)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[row, :n], attention_mask[row, :n], target_mask[row, :n - 1] = f["input_ids"], 1, f["target_mask"]
        patches = np.concatenate([f["pixel_values"] for f in features])
        grids = np.concatenate([f["image_grid_thw"] for f in features])
        pixel_values = pack_pixels(patches, grids, self.model_config, patch_buckets=self.patch_buckets)
        inputs = prepare_inputs(self.model_config, input_ids, attention_mask, grids, len(pixel_values))
        return {"input_ids": inputs.input_ids, "attention_mask": inputs.attention_mask, "target_mask": target_mask,
                "positions": inputs.positions, "pixel_values": pixel_values, "vision": inputs.vision}


def make_dataset(folder: str, processor, model_config, *, batch_size: int, seed: int = 0, shuffle: bool = True,
                 num_epochs: int | None = None, process_index: int = 0, process_count: int = 1,
                 seq_buckets: Sequence[int] = DEFAULT_SEQ_BUCKETS,
                 patch_buckets: Sequence[int] = DEFAULT_PATCH_BUCKETS) -> grain.MapDataset:
    """Batches of a reward-data folder or TFDS split; `iter(ds.to_iter_dataset())` is checkpointable."""
    dataset = grain.MapDataset.source(RewardSource(folder))
    if shuffle:
        dataset = dataset.shuffle(seed=seed)
    dataset = dataset[process_index::process_count]
    dataset = dataset.map(lambda example: example_features(example, processor))
    dataset = dataset.repeat(num_epochs)
    collate = Collator(model_config, processor.pad_token_id, tuple(seq_buckets), tuple(patch_buckets))
    return dataset.batch(batch_size, drop_remainder=True, batch_fn=collate)
