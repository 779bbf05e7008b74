"""Test-wide setup: 8 host CPU devices for mesh tests, no network, quiet absl."""
import os

# XLA:CPU runs every device's program on one shared pool of max(cores, devices) threads, and a device may
# start independent collectives in any order: on 2 cores with 8 devices, 8 threads blocked in collectives
# whose partners wait in the pool's queue deadlock (a 2x4-mesh SFT step hung so, in CI and here, at the
# default pool; at 32 threads it passes). PJRT_NPROC sizes the pool; subprocesses inherit it. A collective
# that does time out aborts the whole pytest process, so a slow but live one on a loaded 2-core host gets
# 900 s instead of XLA's 40 s (kept from before the pool was understood to be the cause).
os.environ.setdefault("PJRT_NPROC", "32")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                      "--xla_cpu_collective_call_terminate_timeout_seconds=900")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
