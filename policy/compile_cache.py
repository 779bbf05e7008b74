"""JAX's persistent compilation cache for a run: compile each program once, not once per host and start.

On a pod every host compiles every program (and every new bucket) at start; with a shared cache
directory (a local path or `gs://...`) a host or a restart finds the executable by its key (the
program, its compile options, jax and libtpu versions) instead. `launch.aot` writes into the same
directory when given it, so a deviceless compile on any machine can warm it before the pod starts;
an entry only serves the pod if jax and libtpu there are the versions that wrote it.
"""
from __future__ import annotations

import jax


def use_compilation_cache(directory: str | None, min_compile_seconds: float = 1.0) -> bool:
    """Read and write compiled programs under `directory` (no-op when empty); True if enabled.
    Programs that compile faster than `min_compile_seconds` are not worth a cache entry."""
    if not directory:
        return False
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return True
