"""Read Visual-ERM TFDS datasets through `tfds.data_source`: no TensorFlow, no builder code.

A reader needs only the files a builder wrote (dataset_info.json, features.json, ArrayRecord
shards): TFDS rebuilds the features from features.json, so reading does not import the builders
(and with them the generators and the render stack).
"""
from __future__ import annotations

import dataclasses
import json
import logging

import grain
import tensorflow_datasets as tfds

from visual_erm import bench_data, records
from visual_erm.datasets import features, location

log = logging.getLogger(__name__)


def data_source(where: str | location.TfdsLocation):
    """The split's `tfds` ArrayRecord data source, images left as stored bytes; never builds anything."""
    where = location.parse(where) if isinstance(where, str) else where
    try:
        builder = tfds.builder(where.name, data_dir=where.data_dir)
    except tfds.core.DatasetNotFoundError as exc:
        raise FileNotFoundError(f"{where}: no prepared TFDS dataset there ({exc})") from None
    if not builder.is_prepared():
        raise FileNotFoundError(f"{where}: no prepared TFDS dataset there ({builder.data_dir} is not written)")
    return builder.as_data_source(split=where.split, decoders=features.skip_image_decoding())


class TfdsRewardSource(grain.sources.RandomAccessDataSource):
    """RewardExamples of a `visual_erm_reward` split, the same type a make_data folder yields."""

    def __init__(self, where: str):
        self._where = where
        self._source = data_source(where)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> records.RewardExample:
        try:
            return features.reward_from_record(self._source[index])
        except (KeyError, TypeError, ValueError) as exc:
            raise records.RecordError(f"{self._where}[{index}]: not a reward record ({exc!r})") from None


def load_bench(where: str, *, strict: bool = False, default_severity: int = 1,
               off_list_errors: str = "reject") -> bench_data.BenchData:
    """Items of a `vc_rewardbench*` split, parsed by the same `bench_data.parse_item` as the published files."""
    source = data_source(where)
    items, errors = [], []
    for index in range(len(source)):
        record = source[index]
        try:
            raw = json.loads(features.as_str(record["record"]))
            item = bench_data.parse_item(raw, features.as_str(record["source"]), default_severity=default_severity,
                                         off_list_errors=off_list_errors)
        except bench_data.BenchItemError as exc:
            if strict:
                raise
            errors.append(exc)
            continue
        items.append(dataclasses.replace(item, reference_png=bytes(record["reference"]),
                                         candidate_png=bytes(record["candidate"])))
    if errors:
        log.warning("%d benchmark records skipped; first: %s", len(errors), errors[0])
    return bench_data.BenchData(items, errors)
