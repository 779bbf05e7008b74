"""Test-wide setup: 8 host CPU devices for mesh tests, no network, quiet absl."""
import os

# 8 CPU devices share 2 cores: a collective's device threads may wait past XLA:CPU's 40 s before all 8 are
# scheduled (a 2x4-mesh SFT step aborted so after other tests had run in the process); wait longer.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                      "--xla_cpu_collective_call_terminate_timeout_seconds=900")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
