"""Pick JAX's platform before jax is imported: CPU on a host with no TPU and no GPU.

With libtpu installed (`.[dev]`, `.[tpu]`) jax otherwise probes for a TPU at start on every host:
seconds of waiting, and lines such as "Unable to initialize backend 'tpu' ... sudo rm
/tmp/libtpu_lockfile" when two jobs overlap. A TPU VM (a /dev/accel* or /dev/vfio device, or the
TPU runtime's environment variables) and a GPU host keep jax's own choice, so the same command
runs everywhere. An explicit JAX_PLATFORMS always wins.
"""
from __future__ import annotations

import glob
import os
from collections.abc import MutableMapping

TPU_ENV = ("TPU_NAME", "TPU_ACCELERATOR_TYPE", "TPU_WORKER_ID", "TPU_WORKER_HOSTNAMES", "CLOUD_TPU_TASK_ID")
TPU_DEVICES = ("/dev/accel*", "/dev/vfio/[0-9]*")
GPU_DEVICES = ("/dev/nvidia[0-9]*", "/dev/kfd")


def has_device(patterns: tuple[str, ...]) -> bool:
    return any(glob.glob(pattern) for pattern in patterns)


def choose_platform(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Set JAX_PLATFORMS=cpu where no accelerator can be present; returns the value set (None: left alone)."""
    if environ.get("JAX_PLATFORMS"):
        return None
    if any(environ.get(name) for name in TPU_ENV) or has_device(TPU_DEVICES) or has_device(GPU_DEVICES):
        return None
    environ["JAX_PLATFORMS"] = "cpu"
    return "cpu"
