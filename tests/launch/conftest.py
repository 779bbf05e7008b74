"""Fixtures of the launch tests: a local GCS emulator (tests/gcs_emulator.py)."""
from tests.gcs_emulator import gcs_bucket  # noqa: F401
