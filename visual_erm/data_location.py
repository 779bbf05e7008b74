"""Reward-data locations in a bucket, made readable: ArrayRecord readers (grain, TFDS's data
source) open local files, so a gs:// folder or a TFDS `data_dir` on gs:// is copied once into the
cache `policy.paths` names, and readers get the local location.

    gs://B/reward/train                          -> CACHE/gs/B/reward/train
    tfds:visual_erm_reward/small:train@gs://B/tfds -> tfds:visual_erm_reward/small:train@CACHE/gs/B/tfds
                                                    (only the dataset's NAME/CONFIG folder is copied)
"""
from __future__ import annotations

import dataclasses

from policy import paths
from visual_erm import tfds_source


def local_location(location: str) -> str:
    """The same data as `location`, at a local path (unchanged when it already is one)."""
    if tfds_source.is_tfds(location):
        where = tfds_source.parse(location)
        if not where.data_dir or not paths.is_url(where.data_dir):
            return location
        dataset = where.name.split(":")[0]  # NAME[/CONFIG], without the version
        paths.local_copy(paths.join(where.data_dir, dataset))
        return str(dataclasses.replace(where, data_dir=paths.cache_path(where.data_dir)))
    return paths.local_copy(location) if paths.is_url(location) else location
