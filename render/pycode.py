"""Run model-written Python and turn its failures into typed render errors.

The message names the exception and the line of *the model's* code, which is
what a revision prompt needs ("ValueError: ... (line 7: plt.bar(x, y, 3))").
"""
from __future__ import annotations

import errno
import socket
import traceback
import urllib.error

from render.errors import RenderInputError

CODE_FILENAME = "<model code>"
# errno values our sandbox produces when it refuses something.
_REFUSED = {errno.EACCES, errno.EPERM, errno.ENETUNREACH, errno.EAFNOSUPPORT, errno.ENOSYS}


def _line_of(code: str, lineno: int | None) -> str:
    lines = code.splitlines()
    if lineno is None or not 1 <= lineno <= len(lines):
        return ""
    return f" (line {lineno}: {lines[lineno - 1].strip()[:120]})"


def _refused(exc: BaseException) -> bool:
    """True when the sandbox, not the code's logic, caused the failure."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror):
            return True
        if isinstance(exc, OSError) and exc.errno in _REFUSED:
            return True
        if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
            exc = exc.reason
            continue
        exc = exc.__cause__ or exc.__context__
    return False


def classify(exc: BaseException, code: str) -> RenderInputError:
    """Map an exception raised by model code to a typed error."""
    if isinstance(exc, RenderInputError):
        return exc
    if isinstance(exc, SyntaxError):
        return RenderInputError("syntax", f"{type(exc).__name__}: {exc.msg}{_line_of(code, exc.lineno)}")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == CODE_FILENAME]
    where = _line_of(code, frames[-1].lineno) if frames else ""
    text = f"{type(exc).__name__}: {exc}"[:200] + where
    if isinstance(exc, MemoryError):
        return RenderInputError("memory", text)
    if _refused(exc):
        return RenderInputError("forbidden", text)
    return RenderInputError("runtime", text)


def run_python(code: str, namespace: dict) -> None:
    """Compile and execute `code`; every failure becomes a RenderInputError.

    `sys.exit(0)` / `sys.exit()` count as a normal end of the script.
    """
    try:
        compiled = compile(code, CODE_FILENAME, "exec", dont_inherit=True)
        exec(compiled, namespace)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise RenderInputError("runtime", f"SystemExit: {exc.code!r}"[:200]) from None
    except BaseException as exc:
        raise classify(exc, code) from None
