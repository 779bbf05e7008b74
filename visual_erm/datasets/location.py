"""TFDS location strings: "tfds:NAME[/CONFIG][:VERSION]:SPLIT[@DATA_DIR]".

One string names a split of a TFDS dataset wherever the code takes a data folder (config
fields such as `data.train_dir`, `--data=` flags), e.g.
"tfds:visual_erm_reward/small:train@/data/tfds" or "tfds:vc_rewardbench:test@/data/tfds".
Without `@DATA_DIR`, TFDS's default data dir (`TFDS_DATA_DIR` or ~/tensorflow_datasets) is used.
The split may carry TFDS slicing ("train[:10%]").
"""
from __future__ import annotations

import dataclasses
import re

PREFIX = "tfds:"
_PATTERN = re.compile(r"^tfds:(?P<name>[^@\[\]]+?):(?P<split>[A-Za-z0-9_]+(\[[^\]]*\])?)(@(?P<data_dir>.+))?$")


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
