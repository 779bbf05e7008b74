"""Feature declarations of the Visual-ERM TFDS datasets and the conversions to and from our types.

Images are stored as the encoded bytes the generator (or the published benchmark) made and read
back with decoding skipped, so a reader gets the same bytes; labels are JSON text.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from visual_erm.records import RewardExample

IMAGE_KEYS = ("reference", "candidate")


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


def skip_image_decoding() -> dict:
    """Decoders that hand back the stored image bytes instead of decoded arrays."""
    return {key: tfds.decode.SkipDecoding() for key in IMAGE_KEYS}


def reward_to_features(example: RewardExample) -> dict:
    return {"id": example.id, "kind": example.kind, "source": example.source, "seed": example.seed,
            "reference": example.reference_png, "candidate": example.candidate_png,
            "reference_code": example.reference_code, "candidate_code": example.candidate_code,
            "critique": example.critique, "edits": list(example.edits)}


def as_str(value: Any) -> str:
    """TFDS hands text back as bytes."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def reward_from_record(record: Mapping[str, Any]) -> RewardExample:
    return RewardExample(
        id=as_str(record["id"]), kind=as_str(record["kind"]), source=as_str(record["source"]), seed=int(record["seed"]),
        reference_png=bytes(record["reference"]), candidate_png=bytes(record["candidate"]),
        reference_code=as_str(record["reference_code"]), candidate_code=as_str(record["candidate_code"]),
        critique=as_str(record["critique"]), edits=tuple(as_str(edit) for edit in record["edits"]))
