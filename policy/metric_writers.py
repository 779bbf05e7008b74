"""Metrics to TensorBoard and JSONL, a progress line with rate and ETA, curve PNGs.

The JSONL log is the source of truth for tests and plots. On resume it is cut
back to the restored step, so a resumed run's log equals an uninterrupted one.
The run directory may be local or a gs:// URL (`policy.paths`): the JSONL file is
rewritten whole at each write (an object store has no append) and TensorBoard
event files go through the same layer.
"""
from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Mapping

import jax
import numpy as np
import tqdm

from policy import paths

WRITERS = ("tensorboard", "jsonl", "wandb")


def _scalar(value) -> float:
    return float(np.asarray(value))


class _PathRecordWriter:
    """A TensorBoard event file at a URL: buffered, the whole object rewritten at each flush."""

    def __init__(self, path: str):
        self.path, self.buffer = path, io.BytesIO()

    def write(self, data: bytes) -> None:
        self.buffer.write(data)

    def flush(self) -> None:
        paths.write_bytes(self.path, self.buffer.getvalue())

    def close(self) -> None:
        self.flush()


class _PathRecordWriterFactory:
    def open(self, path: str) -> _PathRecordWriter:
        return _PathRecordWriter(path)

    def directory_check(self, path: str) -> None:
        del path  # object stores need no folders


def _tensorboard(directory: str, purge_step: int | None):
    """A tensorboardX SummaryWriter whose event files go through `policy.paths` for gs:// URLs."""
    from tensorboardX import SummaryWriter, record_writer

    record_writer.register_writer_factory("gs", _PathRecordWriterFactory())
    return SummaryWriter(directory, purge_step=purge_step)


def writer_names(writers: str | None) -> tuple[str, ...]:
    """"tensorboard,jsonl,wandb" -> its names; JSONL is always written (plots and resume read it)."""
    names = tuple(w.strip() for w in (writers or "tensorboard,jsonl").split(",") if w.strip())
    unknown = set(names) - set(WRITERS)
    if unknown:
        raise ValueError(f"unknown metric writers {sorted(unknown)}; allowed: {', '.join(WRITERS)}")
    return names


class MetricWriter:
    """write(step, {name: scalar}) to `<dir>/metrics.jsonl`, TensorBoard events in `<dir>/tb` and, when
    asked, Weights & Biases; `images`/`texts` add pictures and Markdown (TensorBoard, W&B)."""

    def __init__(self, directory: str, *, resume_step: int = 0, writers: str | None = None, run_config=None):
        directory = paths.resolve(directory)
        names = writer_names(writers)
        self.path = paths.join(directory, "metrics.jsonl")
        self._lines = self._tb = self._wandb = None
        if jax.process_index() != 0:  # one log per run, however many hosts
            return
        kept = [r for r in read_jsonl(self.path) if r["step"] <= resume_step] if paths.exists(self.path) else []
        self._lines = [json.dumps(record) + "\n" for record in kept]
        paths.write_text(self.path, "".join(self._lines))
        if "tensorboard" in names:
            self._tb = _tensorboard(paths.join(directory, "tb"), resume_step + 1 if resume_step else None)
        if "wandb" in names:
            from policy.wandb_writer import WandbWriter

            config = run_config.to_dict() if hasattr(run_config, "to_dict") else run_config
            self._wandb = WandbWriter(directory, config)

    def write(self, step: int, metrics: Mapping[str, float]) -> dict:
        record = {"step": int(step), **{k: _scalar(v) for k, v in sorted(metrics.items())}}
        if self._lines is None:
            return record
        self._lines.append(json.dumps(record) + "\n")
        paths.write_text(self.path, "".join(self._lines))
        finite = {k: v for k, v in record.items() if k != "step" and math.isfinite(v)}
        if self._tb is not None:
            for name, value in finite.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()  # as metrics.jsonl: what a step wrote survives a kill -9 (its resume purges later steps)
        if self._wandb is not None:
            self._wandb.scalars(step, finite)
        return record

    def images(self, step: int, images: Mapping) -> None:
        """{tag: PIL image} as TensorBoard / W&B images (process 0)."""
        if self._tb is not None:
            for tag, image in images.items():
                self._tb.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.images(step, images)

    def texts(self, step: int, texts: Mapping[str, str]) -> None:
        """{tag: Markdown} as TensorBoard text / W&B HTML (process 0)."""
        if self._tb is not None:
            for tag, text in texts.items():
                self._tb.add_text(tag, text, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.texts(step, texts)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.close()


def read_jsonl(path: str) -> list[dict]:
    """Records of a metrics log; a torn last line (killed mid-write) is ignored."""
    records = []
    for line in paths.read_text(path).splitlines():
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
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    return paths.write_bytes(out_png, png.getvalue())
