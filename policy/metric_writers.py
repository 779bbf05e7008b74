"""Metrics to TensorBoard and JSONL, a progress line with rate and ETA, curve PNGs.

The JSONL log is the source of truth for tests and plots. On resume it is cut
back to the restored step, so a resumed run's log equals an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

import jax
import numpy as np
import tqdm


def _scalar(value) -> float:
    return float(np.asarray(value))


class MetricWriter:
    """write(step, {name: scalar}) to `<dir>/metrics.jsonl` and TensorBoard events in `<dir>/tb`."""

    def __init__(self, directory: str, *, resume_step: int = 0, tensorboard: bool = True):
        self.path = os.path.join(directory, "metrics.jsonl")
        self._file = self._tb = None
        if jax.process_index() != 0:  # one log per run, however many hosts
            return
        os.makedirs(directory, exist_ok=True)
        self._truncate_after(resume_step)
        self._file = open(self.path, "a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(directory, "tb"), purge_step=resume_step + 1 if resume_step else None)

    def _truncate_after(self, step: int) -> None:
        if not os.path.exists(self.path):
            return
        kept = [line for line in read_jsonl(self.path) if line["step"] <= step]
        with open(self.path + ".partial", "w") as f:
            f.writelines(json.dumps(line) + "\n" for line in kept)
        os.replace(self.path + ".partial", self.path)

    def write(self, step: int, metrics: Mapping[str, float]) -> dict:
        record = {"step": int(step), **{k: _scalar(v) for k, v in sorted(metrics.items())}}
        if self._file is None:
            return record
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for name, value in record.items():
                if name != "step" and math.isfinite(value):
                    self._tb.add_scalar(name, value, step)
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_jsonl(path: str) -> list[dict]:
    """Records of a metrics log; a torn last line (killed mid-write) is ignored."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


class Progress:
    """A progress line: step, rate, ETA and the latest metrics."""

    def __init__(self, total: int, initial: int = 0, desc: str = "train"):
        self._bar = tqdm.tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
        self._start = time.perf_counter()

    def update(self, steps: int = 1, **metrics) -> None:
        self._bar.update(steps)
        if metrics:
            self._bar.set_postfix({k: f"{_scalar(v):.4g}" for k, v in metrics.items()}, refresh=False)

    def close(self) -> None:
        self._bar.close()


def plot_curves(path: str, out_png: str, keys: tuple[str, ...], title: str = "") -> str:
    """A PNG of the named metrics against step, from a metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl(path)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            ax.plot(*zip(*points), label=key, marker="." if len(points) < 50 else None)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
