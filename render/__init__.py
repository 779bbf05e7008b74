"""Host-side rendering of model-written code (chart, table, svg) in a sandbox.

Knows nothing of JAX. Importing it is light: the renderers (matplotlib,
WeasyPrint, cairosvg) load in the worker processes, or on first use of
`render_in_process` (unsandboxed; trusted code and benchmarks only).
"""
from render.errors import ERROR_KINDS, RenderError, RenderResult
from render.pool import RenderPool, SandboxUnavailable, render, sandbox_report
from render.request import KINDS
from render.sandbox import Limits

__all__ = [
    "ERROR_KINDS", "KINDS", "Limits", "RenderError", "RenderPool", "RenderResult",
    "SandboxUnavailable", "render", "render_in_process", "sandbox_report",
]


def __getattr__(name):
    if name == "render_in_process":
        from render.dispatch import render_in_process

        return render_in_process
    raise AttributeError(f"module 'render' has no attribute {name!r}")
