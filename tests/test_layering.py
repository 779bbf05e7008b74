"""The one-way layering of DESIGN.md is a checked contract (import-linter)."""
import configparser
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    contracts = [s for s in config.sections() if s.startswith("importlinter:contract:")]
    assert f"Contracts: {len(contracts)} kept, 0 broken" in result.stdout
