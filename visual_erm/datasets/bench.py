"""TFDS builders of VC-RewardBench: `vc_rewardbench` (a local copy) and `vc_rewardbench_synthetic`.

    tfds.builder("vc_rewardbench", data_dir=DIR, config=tfds.download.DownloadConfig(manual_dir=COPY))
    tfds.builder("vc_rewardbench_synthetic/default", data_dir=DIR).download_and_prepare()

Both read their items with `bench_data` (the published layout: JSON/JSONL items with image paths
and human errors) and keep each item's published record as JSON next to its image bytes, so
`bench_data.load_bench("tfds:vc_rewardbench:test@DIR")` parses them with the same code as the
files. Items that do not parse, or whose images are missing, are left out and logged.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import ClassVar

import tensorflow_datasets as tfds

from visual_erm import bench_data, bench_synth
from visual_erm.datasets import features
from visual_erm.datasets.reward import CITATION

log = logging.getLogger(__name__)

_IMAGE_PATH_KEYS = ("gt_img_path", "pred_img_path")


def bench_examples(folder: str):
    """(key, features) of every valid item under `folder`, a VC-RewardBench copy in its published layout."""
    skipped = 0
    for record in bench_data.read_records(folder):
        try:
            if isinstance(record, bench_data.BenchItemError):
                raise record
            raw, source, file = record
            # "drop": an item whose only fault is an off-list reference error is kept, as the official scorer keeps it
            item = bench_data.parse_item(raw, source, image_root=file.parent, require_images=True,
                                         off_list_errors="drop")
        except bench_data.BenchItemError as exc:
            skipped += 1
            log.warning("left out of the TFDS dataset: %s", exc)
            continue
        stored = {key: value for key, value in raw.items() if key not in _IMAGE_PATH_KEYS}
        yield item.id, {
            "id": item.id, "kind": item.kind, "source": os.path.relpath(source, folder),
            "record": json.dumps(stored, ensure_ascii=False),
            "reference": Path(item.gt_img_path).read_bytes(), "candidate": Path(item.pred_img_path).read_bytes()}
    if skipped:
        log.warning("%d benchmark records left out of the TFDS dataset", skipped)


def _info(builder, description: str, homepage: str) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=builder, description=description, features=features.bench_features(),
                                 homepage=homepage, citation=CITATION)


class VcRewardbench(tfds.core.GeneratorBasedBuilder):
    """A local copy of the published VC-RewardBench (human-labelled discrepancies), one `test` split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "The published JSON/JSONL items and their images."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place a copy of VC-RewardBench in its published layout in the manual dir: JSON (a list) or JSONL "
        "files of items with id, category, gt_img_path, pred_img_path (relative to the item's file) and "
        "human_errors. Every .json/.jsonl file under the manual dir is read.")

    def __init__(self, *, file_format: str = "array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return _info(self, "VC-RewardBench: (reference, rendering) image pairs of charts, tables and SVGs with "
                           "human-labelled visual discrepancies, and cached judge outputs (pred_json*).",
                     "https://arxiv.org/abs/2603.13224")

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples(os.fspath(dl_manager.manual_dir))}

    def _generate_examples(self, folder: str):
        yield from bench_examples(folder)


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    n: int = 300
    max_edits: int = 4


class VcRewardbenchSynthetic(tfds.core.GeneratorBasedBuilder):
    """The synthetic VC-RewardBench (`bench_synth`): held-out generator seeds, exact labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Items of bench_synth.build from HELD_OUT_SEED on."}
    BUILDER_CONFIGS: ClassVar[list] = [
        SyntheticConfig(name="default", description="300 items, as `python -m visual_erm.bench`"),
        SyntheticConfig(name="tiny", description="a smoke-test set", n=12),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *, render_workers: int = 2, file_format: str = "array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)
        self._render_workers = render_workers

    def _info(self) -> tfds.core.DatasetInfo:
        return _info(self, "A synthetic VC-RewardBench: generated references and their renderings after 0-4 "
                           "structural edits, labelled with exactly the injected discrepancies, from generator "
                           f"seeds {bench_synth.HELD_OUT_SEED} on (never used for training data).",
                     "https://arxiv.org/abs/2603.13224")

    def _split_generators(self, dl_manager):
        config = self.builder_config
        folder = os.path.join(os.fspath(dl_manager.download_dir), "vc_rewardbench_synthetic", config.name)
        bench_synth.build(folder, config.n, workers=self._render_workers, max_edits=config.max_edits)
        return {"test": self._generate_examples(folder)}

    def _generate_examples(self, folder: str):
        yield from bench_examples(folder)
