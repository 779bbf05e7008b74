"""TFDS locations and data sources: how a Visual-ERM TFDS split is named and opened for reading.

A location string "tfds:NAME[/CONFIG][:VERSION]:SPLIT[@DATA_DIR]" names a split wherever the
code takes a data folder (config fields such as `data.train_dir`, `--data=` flags), e.g.
"tfds:visual_erm_reward/small:train@/data/tfds" or "tfds:vc_rewardbench:test@/data/tfds".
Without `@DATA_DIR`, TFDS's default data dir (`TFDS_DATA_DIR` or ~/tensorflow_datasets) is used.
The split may carry TFDS slicing ("train[:10%]").

Reading needs only the files a builder wrote (dataset_info.json, features.json, ArrayRecord
shards): TFDS rebuilds the features from features.json, so no builder (`visual_erm.datasets`) is
imported, and no TensorFlow. `records` and `visual_erm.bench.data` turn the rows into their own types;
`tensorflow_datasets` is imported only when a split is opened.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

PREFIX = "tfds:"
_PATTERN = re.compile(r"^tfds:(?P<name>[^@\[\]]+?):(?P<split>[A-Za-z0-9_]+(\[[^\]]*\])?)(@(?P<data_dir>.+))?$")
IMAGE_KEYS = ("reference", "candidate")  # image features of every Visual-ERM dataset, read back as bytes


class LocationError(ValueError):
    """A string that starts like a TFDS location but does not follow the format."""


@dataclasses.dataclass(frozen=True)
class TfdsLocation:
    name: str  # "visual_erm_reward/small" or "visual_erm_reward/small:1.0.0"
    split: str
    data_dir: str | None = None

    def __str__(self) -> str:
        return f"{PREFIX}{self.name}:{self.split}" + (f"@{self.data_dir}" if self.data_dir else "")


def is_tfds(location: object) -> bool:
    return isinstance(location, str) and location.startswith(PREFIX)


def parse(location: str) -> TfdsLocation:
    match = _PATTERN.match(location)
    if match is None:
        raise LocationError(f"{location!r}: expected tfds:NAME[/CONFIG][:VERSION]:SPLIT[@DATA_DIR]")
    return TfdsLocation(match["name"], match["split"], match["data_dir"])


def data_source(where: str | TfdsLocation):
    """The split's `tfds` ArrayRecord data source, images left as stored bytes; never builds anything."""
    import tensorflow_datasets as tfds

    where = parse(where) if isinstance(where, str) else where
    try:
        builder = tfds.builder(where.name, data_dir=where.data_dir)
    except tfds.core.DatasetNotFoundError as exc:
        raise FileNotFoundError(f"{where}: no prepared TFDS dataset there ({exc})") from None
    if not builder.is_prepared():
        raise FileNotFoundError(f"{where}: no prepared TFDS dataset there ({builder.data_dir} is not written)")
    return builder.as_data_source(split=where.split,
                                  decoders={key: tfds.decode.SkipDecoding() for key in IMAGE_KEYS})


def as_str(value: Any) -> str:
    """TFDS hands text back as bytes."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
