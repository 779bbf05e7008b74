"""JAX's platform is chosen before jax loads: CPU where no accelerator can be, jax's own choice elsewhere."""
import os
import subprocess
import sys

from launch import jax_platform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cpu_only_where_no_tpu_or_gpu_is_present(monkeypatch):
    monkeypatch.setattr(jax_platform, "has_device", lambda patterns: False)
    env = {}
    assert jax_platform.choose_platform(env) == "cpu" and env == {"JAX_PLATFORMS": "cpu"}
    assert jax_platform.choose_platform({"JAX_PLATFORMS": "tpu"}) is None  # an explicit choice wins
    assert jax_platform.choose_platform({"TPU_NAME": "my-tpu"}) is None  # a TPU VM
    monkeypatch.setattr(jax_platform, "has_device", lambda patterns: patterns == jax_platform.TPU_DEVICES)
    env = {}
    assert jax_platform.choose_platform(env) is None and env == {}


def test_no_tpu_probe_on_this_cpu_host():
    """jax's own log of its backends, at INFO: with the choice made first no TPU backend is tried (without
    it, where libtpu is installed, jax logs "Unable to initialize backend 'tpu' ...")."""
    code = ("from launch.jax_platform import choose_platform; choose_platform(); import logging; "
            "logging.basicConfig(level=logging.DEBUG); import jax; print(jax.devices()[0].platform)")
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "cpu", done.stderr
    assert "tpu" not in done.stderr.lower(), done.stderr
