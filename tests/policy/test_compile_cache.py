"""policy.compile_cache: a run's programs land in, and are found again in, the persistent cache directory.
Each case runs in its own process (jax's cache settings are global to a process)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = """
import sys
import jax, jax.numpy as jnp
from policy.compile_cache import use_compilation_cache
print(use_compilation_cache(sys.argv[1], min_compile_seconds=0.0))
print(float(jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.float32(1.0))))
"""


def _run(directory: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, directory], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_programs_are_written_once_and_reused(tmp_path):
    cache = tmp_path / "cache"
    assert _run(str(cache))[0] == "True"
    entries = sorted(os.listdir(cache))
    assert entries  # the jitted program's executable
    first = {name: os.path.getmtime(cache / name) for name in entries}
    assert _run(str(cache))[0] == "True"
    assert {name: os.path.getmtime(cache / name) for name in sorted(os.listdir(cache))} == first  # found, not rewritten


def test_an_empty_directory_setting_leaves_the_cache_off(tmp_path):
    out = _run("")
    assert out[0] == "False" and not any(tmp_path.iterdir())
