"""What a render returns: an image, or a typed error short enough to show a model.

Render errors are data, not exceptions: a GRPO step renders thousands of model
outputs and every failure must become a defined reward and a revision hint.
"""
from __future__ import annotations

import dataclasses

from PIL import Image

# The closed set of error kinds. Rewards and metrics group failures by these.
ERROR_KINDS = (
    "timeout",  # ran past its wall-clock or CPU budget
    "memory",  # exceeded its address-space budget
    "syntax",  # Python SyntaxError, malformed XML
    "runtime",  # an exception in the code, or the process crashed
    "no_figure",  # chart code ran but drew no matplotlib figure
    "forbidden",  # the sandbox refused: file, network, process, external reference
    "bad_input",  # not the kind of code we were asked to render (no table, no <svg>)
    "too_large",  # input or output beyond the size limits
    "invalid_output",  # the task returned an image of another size than the request allows
)

MAX_MESSAGE_CHARS = 300


@dataclasses.dataclass(frozen=True)
class RenderError:
    """A typed render failure; `message` is fit for a revision prompt."""

    kind: str
    message: str

    def __post_init__(self):
        if self.kind not in ERROR_KINDS:
            raise ValueError(f"unknown render error kind {self.kind!r}; expected one of {ERROR_KINDS}")
        if len(self.message) > MAX_MESSAGE_CHARS:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE_CHARS - 3] + "...")

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """Exactly one of `image` (PIL RGB) and `error` is set. `trace`: what a chart drew, when
    asked for (`RenderPool.submit(..., trace=True)`; schema in render/trace_schema.py)."""

    image: Image.Image | None = None
    error: RenderError | None = None
    seconds: float = 0.0
    trace: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, kind: str, message: str, seconds: float = 0.0) -> RenderResult:
        return cls(image=None, error=RenderError(kind, message), seconds=seconds)


class RenderInputError(Exception):
    """Raised inside a renderer for a typed failure; converted to RenderResult."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.error = RenderError(kind, message)
