"""Reward examples on disk: ArrayRecord shards of msgpack records.

Layout of a reward-data folder:
    reward-00000.array_record, reward-00001.array_record, ...   (complete shards only)
    progress.json   (how far generation got; lets `make_data` resume)
Each record is a msgpack map with the fields of `RewardExample`; images are PNG
bytes. ArrayRecord gives grain random access without TensorFlow.

The same examples can live in a TFDS dataset (`visual_erm/datasets/`), named by a
location string (`visual_erm.tfds_source`) "tfds:NAME[/CONFIG][:VERSION]:SPLIT@DATA_DIR". `reward_source`
opens either kind of location and yields `RewardExample`s, so SFT, the judge's
evaluation and the tokenizer corpus read both through one reader.
"""
from __future__ import annotations

import dataclasses
import glob
import io
import os
from collections.abc import Iterator, Mapping
from typing import Any

import grain
import msgpack
from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter
from PIL import Image

from visual_erm import tfds_source

SHARD_PATTERN = "reward-{:05d}.array_record"


class RecordError(ValueError):
    """A record or shard that cannot be read; the message names it."""


@dataclasses.dataclass(frozen=True)
class RewardExample:
    id: str  # "<kind>-<seed>"
    kind: str  # chart | table | svg
    source: str  # generator, e.g. "chart/bar"
    seed: int
    reference_png: bytes  # the reference rendering
    candidate_png: bytes  # the edited rendering
    reference_code: str
    candidate_code: str
    critique: str  # target critique JSON: {"errors": [...]}
    edits: tuple[str, ...] = ()  # injection types applied

    def images(self) -> tuple[Image.Image, Image.Image]:
        return tuple(Image.open(io.BytesIO(b)).convert("RGB") for b in (self.reference_png, self.candidate_png))


_FIELDS = tuple(f.name for f in dataclasses.fields(RewardExample))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode(example: RewardExample) -> bytes:
    record = dataclasses.asdict(example)
    record["edits"] = list(example.edits)
    return msgpack.packb(record, use_bin_type=True)


def decode(data: bytes, where: str = "record") -> RewardExample:
    try:
        record = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise RecordError(f"{where}: not a msgpack record ({type(exc).__name__})") from None
    if not isinstance(record, dict) or set(record) != set(_FIELDS):
        raise RecordError(f"{where}: expected fields {_FIELDS}")
    record["edits"] = tuple(record["edits"])
    return RewardExample(**record)


def write_shard(path: str, examples: list[RewardExample]) -> None:
    """Write atomically: a shard either exists complete or not at all."""
    temporary = path + ".partial"
    writer = ArrayRecordWriter(temporary, "group_size:1")
    for example in examples:
        writer.write(encode(example))
    writer.close()
    os.replace(temporary, path)


def shard_paths(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "reward-*.array_record")))


def unreadable_shard(paths: list[str]) -> str | None:
    """The first of `paths` that ArrayRecord cannot open (None: all open)."""
    for path in paths:
        try:
            ArrayRecordReader(path).close()
        except RuntimeError:
            return path
    return None


class FolderSource(grain.sources.RandomAccessDataSource):
    """Random access to the RewardExamples of a make_data folder (its complete shards)."""

    def __init__(self, folder: str):
        paths = shard_paths(folder)
        if not paths:
            raise RecordError(f"{folder}: no reward-*.array_record shards")
        self._folder = folder
        try:
            self._source = grain.sources.ArrayRecordDataSource(paths)
        except RuntimeError as e:  # Riegeli's error names no file: find the shard that does not open
            raise RecordError(f"{unreadable_shard(paths) or folder}: not a readable ArrayRecord shard, truncated or "
                              f"corrupt (delete it and rerun make_data to regenerate it): {str(e)[:300]}") from e

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> RewardExample:
        return decode(self._source[index], f"{self._folder}: record {index}")


def from_tfds_row(row: Mapping[str, Any]) -> RewardExample:
    """A `visual_erm_reward` row (`visual_erm.datasets.features.reward_features`) as a RewardExample."""
    text = tfds_source.as_str
    return RewardExample(
        id=text(row["id"]), kind=text(row["kind"]), source=text(row["source"]), seed=int(row["seed"]),
        reference_png=bytes(row["reference"]), candidate_png=bytes(row["candidate"]),
        reference_code=text(row["reference_code"]), candidate_code=text(row["candidate_code"]),
        critique=text(row["critique"]), edits=tuple(text(edit) for edit in row["edits"]))


class TfdsRewardSource(grain.sources.RandomAccessDataSource):
    """RewardExamples of a `visual_erm_reward` split, the same type a make_data folder yields."""

    def __init__(self, location: str):
        self._location = location
        self._source = tfds_source.data_source(location)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> RewardExample:
        try:
            return from_tfds_row(self._source[index])
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"{self._location}[{index}]: not a reward record ({exc!r})") from None


def reward_source(location: str | os.PathLike) -> grain.sources.RandomAccessDataSource:
    """RewardExamples at `location`: a make_data folder, or a TFDS split ("tfds:NAME:SPLIT@DATA_DIR")."""
    location = os.fspath(location)
    if tfds_source.is_tfds(location):
        return TfdsRewardSource(location)
    return FolderSource(location)


def read_examples(location: str | os.PathLike) -> Iterator[RewardExample]:
    source = reward_source(location)
    for index in range(len(source)):
        yield source[index]
