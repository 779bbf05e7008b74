"""The task-source registry: named sources (`rl.task_sources`, `rl.datasets`, `rl.shapes`) mixed into one
shuffled, per-process-sharded, checkpointable `grain.MapDataset` of `rl.task_sources.RLTask`.

Kept apart from `rl.task_sources` so the sources' modules import the base classes and this module imports
the sources, with no cycle.
"""
from __future__ import annotations

from collections.abc import Callable

import grain

from rl import datasets, shapes
from rl.task_sources import IconFolderSource, LoadReport, SyntheticSource, TaskSource


def _plain(value) -> dict:
    if value is None:
        return {}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return dict(value)


def _factories() -> dict[str, Callable[..., TaskSource]]:
    return {
        "shapes": shapes.ShapeSource,
        "synthetic": SyntheticSource,
        "icons": IconFolderSource,
        "chartmimic": datasets.load_chartmimic,
        "plot2code": datasets.load_plot2code,
        "pubtabnet": datasets.load_pubtabnet,
        "starvector": datasets.load_starvector,
    }


SOURCE_NAMES = ("synthetic", "shapes", "icons", "chartmimic", "plot2code", "pubtabnet", "starvector")
_RENDERING = ("synthetic", "shapes", "icons", "starvector")


def build_source(spec, *, renderer=None, strict: bool = False, report: LoadReport | None = None) -> TaskSource:
    """One TaskSource from ``{"name": ..., "params": {...}}`` (a dict or ml_collections ConfigDict)."""
    name = spec["name"]
    factories = _factories()
    if name not in factories:
        raise ValueError(f"unknown task source {name!r}; expected one of {tuple(factories)}")
    params = _plain(spec["params"])
    if name in _RENDERING:
        params["renderer"] = renderer
    return factories[name](**params, strict=strict, report=report)


def make_task_dataset(source_config, *, seed: int, shuffle: bool = True, process_index: int = 0,
                      process_count: int = 1, renderer=None, num_epochs: int | None = None,
                      strict: bool = False, report: LoadReport | None = None) -> grain.MapDataset:
    """A grain MapDataset of RLTask from one source or a weighted mix of several.

    `source_config` is ``{"name", "params"}`` for one source, or ``{"sources": [{"name", "params",
    "weight"}, ...]}`` to mix (`grain.MapDataset.mix`, weights default 1). Each source is sharded
    to this process (``[process_index::process_count]``, disjoint across processes), shuffled with
    a seed derived from `seed`, and repeated `num_epochs` times (None: forever, reshuffled each
    epoch; a finite mix ends when its first source runs out). Unreadable tasks are None in the
    MapDataset and skipped when iterating; their errors land in `report`. Checkpoint with
    ``it = iter(ds.to_iter_dataset()); state = it.get_state()`` and resume with ``it.set_state(state)``.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    # A mixture names its sources; one source may leave `sources` out (a plain dict) or None (a config's
    # `tasks` block, which declares it).
    mixture = source_config["sources"] if "sources" in source_config else None
    specs = [source_config] if mixture is None else list(mixture)
    if not specs:
        raise ValueError("source_config.sources is empty")
    datasets, weights = [], []
    for k, spec in enumerate(specs):
        weight = float(spec["weight"]) if "weight" in spec else 1.0  # a source alone, or an equal share
        if weight <= 0:
            raise ValueError(f"task source {spec['name']!r} has weight {weight}; weights must be > 0")
        source = build_source(spec, renderer=renderer, strict=strict, report=report)
        ds = grain.MapDataset.source(source)[process_index::process_count]
        if len(ds) == 0:
            raise ValueError(f"task source {source.name!r} has no tasks for process {process_index} of {process_count}")
        if shuffle:
            ds = ds.shuffle(seed=(int(seed) * 1_000_003 + k) % 2**32)
        if num_epochs != 1:
            ds = ds.repeat(num_epochs)
        datasets.append(ds)
        weights.append(weight)
    return datasets[0] if len(datasets) == 1 else grain.MapDataset.mix(datasets, weights)
