"""Feature declarations of the Visual-ERM TFDS datasets, and a RewardExample as a row of them.

Images are stored as the encoded bytes the generator (or the published benchmark) made and read
back with decoding skipped (`visual_erm.tfds_source`), so a reader gets the same bytes; labels are
JSON text. Reading rows back into our types: `records.from_tfds_row`, `visual_erm.bench.load_bench`.
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from visual_erm.records import RewardExample


def _image(doc: str, encoding_format: str | None = "png") -> tfds.features.Image:
    return tfds.features.Image(shape=(None, None, 3), encoding_format=encoding_format, doc=doc)


def reward_features() -> tfds.features.FeaturesDict:
    text = tfds.features.Text
    return tfds.features.FeaturesDict({
        "id": text(doc='"<kind>-<seed>"'),
        "kind": text(doc="chart | table | svg"),
        "source": text(doc='generator, e.g. "chart/bar"'),
        "seed": tfds.features.Scalar(np.int64, doc="generator seed (splits use disjoint seed ranges)"),
        "reference": _image("rendering of the reference code (PNG)"),
        "candidate": _image("rendering of the edited code (PNG)"),
        "reference_code": text(),
        "candidate_code": text(),
        "critique": text(doc='target critique, JSON {"errors": [{category, severity, location, description}]}'),
        "edits": tfds.features.Sequence(text(), doc="names of the injected edits"),
    })


def bench_features() -> tfds.features.FeaturesDict:
    text = tfds.features.Text
    return tfds.features.FeaturesDict({
        "id": text(),
        "kind": text(doc="chart | table | svg"),
        "source": text(doc='where the item was read: "file:line" or "file[i]" in the published copy'),
        "record": text(doc="the published item as JSON (human_errors, pred_json* judge outputs, ...) "
                           "without its image paths"),
        "reference": _image("gt_img_path, bytes as published", None),
        "candidate": _image("pred_img_path, bytes as published", None),
    })


def reward_to_features(example: RewardExample) -> dict:
    return {"id": example.id, "kind": example.kind, "source": example.source, "seed": example.seed,
            "reference": example.reference_png, "candidate": example.candidate_png,
            "reference_code": example.reference_code, "candidate_code": example.candidate_code,
            "critique": example.critique, "edits": list(example.edits)}
