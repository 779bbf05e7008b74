"""README.md and docs/architecture.md cite only what the repository has, and point nowhere outside it.

A citation is a backticked file path under one of the repository's folders (`rl/trainer.py`, `render/`)
or a backticked dotted name rooted in one of its packages (`policy.sampler.Sampler`, `rl.grpo`), plus,
inside fenced code, `python -m MODULE` and input files under those folders (`--config=configs/x.py`).
A path must exist; a module must be importable (found without running it: command-line modules define
flags at import); any other dotted name must resolve as attributes of its longest importable prefix.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pathlib
import re
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/architecture.md")
FOLDERS = ("policy", "render", "visual_erm", "rl", "launch", "configs", "tests", "bench", "docs", ".ci")
PACKAGES = ("policy", "render", "visual_erm", "rl", "launch", "configs", "tests")

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
PATH = re.compile(rf"^(?:{'|'.join(re.escape(f) for f in FOLDERS)})/[\w./-]*$")
DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+$")
FENCED_MODULE = re.compile(r"python -m ([\w.]+)")
FENCED_INPUT = re.compile(rf"(?<![\w/.:-])((?:{'|'.join(re.escape(f) for f in FOLDERS)})/[\w./-]*"
                          r"\.(?:py|sh|md|cfg|toml|json))\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# What a clone does not have: the project's old notes, anything above the repository.
OUTSIDE = re.compile(r"(?<![\w.-])shared/|DESIGN\.md|\.\./")


@dataclasses.dataclass(frozen=True)
class Citations:
    paths: frozenset[str]
    names: frozenset[str]


def citations(text: str) -> Citations:
    """The file paths and dotted names a page cites (see the module docstring)."""
    paths, names = set(), set()
    for block in FENCE.findall(text):
        names.update(FENCED_MODULE.findall(block))
        paths.update(FENCED_INPUT.findall(block))
    for _, span in CODE_SPAN.findall(FENCE.sub("", text)):
        span = span.strip()
        if span.startswith("python -m "):
            span = span[len("python -m "):]
        if not span:
            continue
        token = span.split()[0]
        path = token.split(":")[0]
        if PATH.match(path):
            paths.add(path)
        name = token.split("(")[0].rstrip(".,;:")
        if DOTTED.match(name):
            names.add(name)
    return Citations(frozenset(paths), frozenset(names))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # a parent that is not a package, or does not import
        return False


def resolve(name: str) -> object:
    """The module or object a dotted name cites; raises ImportError or AttributeError naming what is missing."""
    parts = name.split(".")
    if _is_module(name):
        return types.SimpleNamespace(module=name)  # found, not executed
    prefix = max((i for i in range(1, len(parts)) if _is_module(".".join(parts[:i]))), default=0)
    if not prefix:
        raise ImportError(f"no module {parts[0]!r}")
    obj = importlib.import_module(".".join(parts[:prefix]))
    for i in range(prefix, len(parts)):
        if not hasattr(obj, parts[i]):
            raise AttributeError(f"{'.'.join(parts[:i])} has no attribute {parts[i]!r}")
        obj = getattr(obj, parts[i])
    return obj


def problems(text: str, page_dir: pathlib.Path = ROOT) -> list[str]:
    """Everything wrong with a page: missing paths, unresolvable names, references outside the repository."""
    found = citations(text)
    out = [f"path `{p}` does not exist" for p in sorted(found.paths) if not (ROOT / p).exists()]
    for name in sorted(found.names):
        try:
            resolve(name)
        except (ImportError, AttributeError) as error:
            out.append(f"name `{name}` does not resolve: {error}")
    out += [f"points outside the repository: {m.group(0)!r}" for m in OUTSIDE.finditer(text)]
    for target in LINK.findall(text):
        if re.match(r"^(?:https?:|mailto:|#)", target):
            continue
        where = (page_dir / target.split("#")[0]).resolve()
        if not where.is_relative_to(ROOT) or not where.exists():
            out.append(f"link ({target}) is not a file of the repository")
    return out


@pytest.mark.parametrize("page", PAGES)
def test_page_cites_only_what_exists(page):
    path = ROOT / page
    assert path.exists(), f"{page} is missing"
    assert problems(path.read_text(encoding="utf-8"), path.parent) == []


def test_architecture_covers_the_rooms_and_both_data_flows():
    """The map cites every room and the modules of the SFT and GRPO flows (an empty page passes the test above),
    and the README links to it."""
    found = citations((ROOT / "docs/architecture.md").read_text(encoding="utf-8"))
    modules = {p.removesuffix(".py").replace("/", ".") for p in found.paths if p.endswith(".py")}
    modules |= {".".join(n.split(".")[:i]) for n in found.names for i in range(1, n.count(".") + 2)}
    rooms = {p.split("/")[0] for p in found.paths} | {m.split(".")[0] for m in modules}
    assert set(FOLDERS) - {".ci", "docs"} <= rooms
    flows = {"rl.trainer", "rl.rollout", "rl.grpo", "rl.batch", "policy.sampler", "policy.host_batch",
             "visual_erm.train", "visual_erm.data", "policy.train_state", "policy.sharding", "policy.attention"}
    assert flows <= modules, flows - modules
    assert "docs/architecture.md" in LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_checker_finds_what_is_missing_or_outside():
    """The check itself: a removed name, a missing file and a reference outside the repository all fail."""
    page = ("The sampler is `policy.sampler.Sampler` and `policy.sampler.NoSuchSampler`; see `rl/no_such_file.py`,\n"
            "`no_such_package.thing` is not ours, `rl.no_such_module` is. The old map: `shared/DESIGN.md`,\n"
            "[up](../elsewhere.md), [ok](render/README.md).\n\n```bash\npython -m launch.no_such_cli\n```\n")
    found = problems(page)
    assert any("policy.sampler.NoSuchSampler" in p for p in found)
    assert any("rl/no_such_file.py" in p for p in found)
    assert any("`rl.no_such_module`" in p for p in found)
    assert any("launch.no_such_cli" in p for p in found)
    assert any("shared/" in p for p in found) and any("DESIGN.md" in p for p in found)
    assert any("(../elsewhere.md)" in p for p in found)
    assert not any("policy.sampler.Sampler`" in p or "no_such_package" in p or "render/README.md" in p
                   for p in found)
