"""What every command line of the project shares: absl flags, checked before any work, and one cache dir.

Each command defines its flags on its own `flags.FlagValues()` (so commands imported side by side, as
in tests, never collide on a name like `--out`) and calls `parse(FLAGS, argv, __doc__)` first: an
unknown flag, a malformed value or a failed check (absl validators, or `check(...)` after parsing)
exits with status 2 and a message naming the flag, the value and what is allowed, before anything
is built or rendered. `main(argv)` functions take argv without the program name, as tests call them.

Caches (the synthetic benchmark sets a command builds once and reuses) live under one directory:
`$VISUAL_ERM_CACHE`, else `$XDG_CACHE_HOME/visual-erm-jax`, else `~/.cache/visual-erm-jax`.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from absl import flags

CACHE_ENV = "VISUAL_ERM_CACHE"


class UsageError(SystemExit):
    """A bad command line: exits with status 2 after printing the reason."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def fail(message: str) -> None:
    """Report a bad command line (on stderr) and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise UsageError(message)


def parse(flag_values: flags.FlagValues, argv: Sequence[str] | None, doc: str) -> flags.FlagValues:
    """Parse `argv` (no program name; None: sys.argv[1:]) into `flag_values`, reset to defaults first."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "--helpfull") for a in argv):
        print(doc.strip() + "\n\nflags:\n" + flag_values.get_help())
        raise SystemExit(0)
    flag_values.unparse_flags()
    try:
        rest = flag_values(["command", *argv])[1:]
    except flags.Error as e:
        fail(f"{e} (see --help)")
    if rest:
        fail(f"unexpected arguments {rest}: every value is a --flag=value (see --help)")
    return flag_values


def check(condition: bool, message: str) -> None:
    """A check of flag values after parsing (one that needs several flags): fails like a bad flag."""
    if not condition:
        fail(message)


def cache_dir(*parts: str) -> str:
    """A folder under the project's cache directory (created)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "visual-erm-jax")
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path


__all__ = ["CACHE_ENV", "UsageError", "cache_dir", "check", "fail", "parse"]


def json_object(flag: str, text: str) -> dict:
    """The value of --`flag` read as a JSON object; exits naming the flag when it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"--{flag}={text}: not JSON ({e.msg})")
    check(isinstance(value, dict), f"--{flag}={text}: expected a JSON object")
    return value
