"""Request validation shared by the pool (before any fork) and the renderers."""
from __future__ import annotations

from render.errors import RenderInputError

KINDS = ("chart", "table", "svg")
MAX_CODE_CHARS = 1_000_000


def check_request(kind, code, size) -> None:
    """Raise RenderInputError for a request no renderer should see."""
    if kind not in KINDS:
        raise RenderInputError("bad_input", f"unknown kind {kind!r}; expected one of {KINDS}")
    if not isinstance(code, str):
        raise RenderInputError("bad_input", f"code must be str, got {type(code).__name__}")
    if len(code) > MAX_CODE_CHARS:
        raise RenderInputError("too_large", f"code of {len(code)} chars exceeds {MAX_CODE_CHARS}")
    if size is not None:
        ok = (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(s, int) and 1 <= s <= 4096 for s in size)
        )
        if not ok:
            raise RenderInputError("bad_input", f"size must be (width, height) in 1..4096, got {size!r}")
