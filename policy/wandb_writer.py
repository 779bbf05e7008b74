"""The optional Weights & Biases writer of `MetricWriter` (`--config.writers=tensorboard,jsonl,wandb`).

One W&B run per work directory: its id is derived from the directory, so a resumed run continues
the same W&B run. wandb keeps its own files (and, offline, the whole run) in `<workdir>/wandb`, or
for a gs:// workdir in the local cache copy of it (`policy.paths.cache_path`). The project is
`WANDB_PROJECT` (default visual-erm-jax); `WANDB_MODE=offline` writes without an account, to be
uploaded later with `wandb sync`.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from policy import paths


class WandbWriter:
    def __init__(self, directory: str, run_config: Mapping | None = None):
        import wandb

        self._wandb = wandb
        local = paths.cache_path(directory) if paths.is_url(directory) else directory
        os.makedirs(local, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "visual-erm-jax"),
                              name=os.path.basename(directory.rstrip("/")),
                              id=hashlib.sha256(directory.encode()).hexdigest()[:16], resume="allow", dir=local,
                              config=dict(run_config or {}))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def images(self, step: int, images: Mapping) -> None:
        self.run.log({tag: self._wandb.Image(image) for tag, image in images.items()}, step=step)

    def texts(self, step: int, texts: Mapping[str, str]) -> None:
        self.run.log({tag: self._wandb.Html(f"<pre>{text}</pre>") for tag, text in texts.items()}, step=step)

    def close(self) -> None:
        self.run.finish()
