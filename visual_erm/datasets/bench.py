"""TFDS builders of VC-RewardBench: `vc_rewardbench` (a local copy) and `vc_rewardbench_synthetic`.

    python -m visual_erm.datasets.bench --data_dir=DIR [--manual_dir=COPY] [--config=default|tiny]

writes `vc_rewardbench` from the copy in its published layout at COPY, or, without --manual_dir,
`vc_rewardbench_synthetic/<config>` (generated: rendering, with a progress bar), and prints the
location to pass as `--data=` to `python -m visual_erm.bench`. In code:

    tfds.builder("vc_rewardbench", data_dir=DIR).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=COPY))
    tfds.builder("vc_rewardbench_synthetic/default", data_dir=DIR).download_and_prepare()

Both read their items with `visual_erm.bench.data` (the published layout: JSON/JSONL items with image paths
and human errors) and keep each item's published record as JSON next to its image bytes, so
`visual_erm.bench.load_bench("tfds:vc_rewardbench:test@DIR")` parses them with the same code as the
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
from absl import flags

from policy import cli
from visual_erm.bench import synth
from visual_erm.bench.data import BenchItemError, parse_item, read_records
from visual_erm.datasets import features
from visual_erm.datasets.reward import CITATION

log = logging.getLogger(__name__)

_IMAGE_PATH_KEYS = ("gt_img_path", "pred_img_path")


def bench_examples(folder: str):
    """(key, features) of every valid item under `folder`, a VC-RewardBench copy in its published layout."""
    skipped = 0
    for record in read_records(folder):
        try:
            if isinstance(record, BenchItemError):
                raise record
            raw, source, file = record
            # "drop": an item whose only fault is an off-list reference error is kept, as the official scorer keeps it
            item = parse_item(raw, source, image_root=file.parent, require_images=True,
                              off_list_errors="drop")
        except BenchItemError as exc:
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
    """The synthetic VC-RewardBench (`visual_erm.bench.synth`): held-out generator seeds, exact labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Items of visual_erm.bench.synth.build from HELD_OUT_SEED on."}
    BUILDER_CONFIGS: ClassVar[list] = [
        SyntheticConfig(name="default", description="300 items, as `python -m visual_erm.bench`"),
        SyntheticConfig(name="tiny", description="a smoke-test set", n=12),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *, render_workers: int = 2, allow_weak_sandbox: bool = False, file_format: str = "array_record",
                 **kwargs):
        super().__init__(file_format=file_format, **kwargs)
        self._render_workers = render_workers
        self._allow_weak_sandbox = allow_weak_sandbox

    def _info(self) -> tfds.core.DatasetInfo:
        return _info(self, "A synthetic VC-RewardBench: generated references and their renderings after 0-4 "
                           "structural edits, labelled with exactly the injected discrepancies, from generator "
                           f"seeds {synth.HELD_OUT_SEED} on (never used for training data).",
                     "https://arxiv.org/abs/2603.13224")

    def _split_generators(self, dl_manager):
        config = self.builder_config
        folder = os.path.join(os.fspath(dl_manager.download_dir), "vc_rewardbench_synthetic", config.name)
        synth.build(folder, config.n, workers=self._render_workers, max_edits=config.max_edits,
                          allow_weak_sandbox=self._allow_weak_sandbox)
        return {"test": self._generate_examples(folder)}

    def _generate_examples(self, folder: str):
        yield from bench_examples(folder)


FLAGS = flags.FlagValues()
flags.DEFINE_string("data_dir", None, "TFDS data directory to write into", flag_values=FLAGS)
flags.DEFINE_string("manual_dir", None, "a local VC-RewardBench copy (published layout): writes vc_rewardbench; "
                    "without it the synthetic set is generated", flag_values=FLAGS)
flags.DEFINE_enum("config", "default", [c.name for c in VcRewardbenchSynthetic.BUILDER_CONFIGS],
                  "vc_rewardbench_synthetic config (without --manual_dir)", flag_values=FLAGS)
flags.DEFINE_integer("workers", 2, "render workers (synthetic set)", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("allow_weak_sandbox", False, "render even where the sandbox is incomplete (no user namespaces, "
                  "as in Colab): one warning names what is missing", flag_values=FLAGS)
flags.mark_flag_as_required("data_dir", flag_values=FLAGS)


def main(argv=None) -> str:
    """Write one of the two datasets; returns its `tfds:` location for `load_bench` / `visual_erm.bench`."""
    cli.parse(FLAGS, argv, __doc__)
    if FLAGS.manual_dir is not None:
        cli.check(os.path.isdir(FLAGS.manual_dir), f"--manual_dir={FLAGS.manual_dir}: no such folder (expected a "
                  "VC-RewardBench copy: .json/.jsonl items with gt_img_path, pred_img_path, human_errors)")
        name = "vc_rewardbench"
        builder = tfds.builder(name, data_dir=FLAGS.data_dir)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=FLAGS.manual_dir))
    else:
        name = f"vc_rewardbench_synthetic/{FLAGS.config}"
        builder = tfds.builder(name, data_dir=FLAGS.data_dir, render_workers=FLAGS.workers,
                               allow_weak_sandbox=FLAGS.allow_weak_sandbox)
        builder.download_and_prepare()
    location = f"tfds:{name}:test@{FLAGS.data_dir}"
    print(f"{builder.info.splits['test'].num_examples} items written to {builder.data_dir}; "
          f"score a judge on them with: python -m visual_erm.bench --data={location}")
    return location


if __name__ == "__main__":
    main()
