"""`ConfigError`: a run config value that cannot run, named by its `--config.` flag.

Why in `policy`: the launcher's checks (`launch.config_check`) and the trainers' own (`rl.trainer`,
which tests and notebooks call without the launcher) raise the same error, and `policy` is the layer
both may import.
"""
from __future__ import annotations

from collections.abc import Sequence


class ConfigError(ValueError):
    """A config value that cannot run; `key` is its dotted name."""

    def __init__(self, key: str, value, problem: str, allowed: Sequence | str | None = None):
        self.key = key
        text = f"--config.{key}={value!r}: {problem}"
        if allowed is not None:
            text += f"; allowed: {allowed if isinstance(allowed, str) else ', '.join(map(str, allowed))}"
        super().__init__(text)
