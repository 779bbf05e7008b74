"""The config schema: every config declares only schema keys, a misspelt key fails naming it, each file sets
only what it changes, and references follow the keys they derive from."""
import ast
import dataclasses
import importlib.util
import os
import re

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from configs import common
from launch.config_check import ConfigError, check
from policy.optimizer import learning_rate_schedule

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "configs")


def _module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIGS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _every_config() -> list[tuple[str, tuple]]:
    """(file, get_config arguments) of every experiment in configs/, each task kind of a per-kind file."""
    found = []
    for file in sorted(os.listdir(CONFIGS)):
        name = file[:-3]
        if not file.endswith(".py") or name in ("__init__", "common"):
            continue
        kinds = getattr(_module(name), "KINDS", None)
        found += [(name, (kind,)) for kind in kinds] if kinds else [(name, ())]
    return found


EVERY = _every_config()
IDS = [":".join((name, *args)) for name, args in EVERY]


def _load(name, *args):
    return _module(name).get_config(*args)


def test_every_config_file_is_covered():
    assert {"tiny_erm", "tiny_erm_shapes", "tiny_grpo_svg", "tiny_shapes_policy", "qwen3vl_8b_erm",
            "qwen3vl_8b_grpo"} <= {name for name, _ in EVERY}
    assert ("qwen3vl_8b_grpo", ("svg",)) in EVERY


@pytest.mark.parametrize("name,args", EVERY, ids=IDS)
def test_every_config_holds_exactly_the_schema_keys(name, args):
    assert common.undeclared(_load(name, *args)) == ([], [])


@pytest.mark.parametrize("flag,key", [("--config.grpo.clip_hgh=0.3", "grpo.clip_hgh"),
                                      ("--config.heldout.nn=3", "heldout.nn")])
@pytest.mark.parametrize("name,args", EVERY, ids=IDS)
def test_a_misspelt_key_on_the_command_line_fails_naming_it(name, args, flag, key):
    """Through absl's config_flags, as `launch.main` defines --config (a locked config file)."""
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config file", flag_values=values, lock_config=True)
    path = os.path.join(CONFIGS, f"{name}.py") + "".join(f":{a}" for a in args)
    values(["main", f"--config={path}"])  # the file alone loads
    values.unparse_flags()
    with pytest.raises(flags.Error, match=re.escape(key)):
        values(["main", f"--config={path}", flag])


def test_a_config_file_cannot_add_an_undeclared_key():
    grpo, sft = common.grpo(), common.sft()
    with pytest.raises(AttributeError, match='"nn" does not exist'):
        grpo.heldout.nn = 3
    with pytest.raises(AttributeError, match='"clip_hgh" does not exist'):
        grpo.grpo.clip_hgh = 0.3
    with pytest.raises(AttributeError, match='"train_dri" does not exist'):
        sft.data.train_dri = "/data"


def test_a_block_replaced_whole_is_refused_naming_the_key():
    config = _load("tiny_grpo_svg")
    config.heldout = ml_collections.ConfigDict({"n": 64, "nn": 3, "every": 0, "min_image_dependence": 0.1,
                                                "tasks": config.heldout.tasks})
    with pytest.raises(ConfigError) as error:
        check(config)
    assert error.value.key == "heldout.nn" and "--config.heldout.nn=3" in str(error.value)
    config = _load("tiny_erm")
    config.eval = ml_collections.ConfigDict({"every": 50, "batches": 6, "critiques": 0, "max_new_tokens": 256})
    with pytest.raises(ConfigError) as error:
        check(config)
    assert error.value.key == "eval.greedy" and "missing" in str(error.value)


def test_the_grpo_block_is_every_grpo_config_field_with_its_default():
    from rl.grpo import GRPOLoop, GRPOLoss

    defaults = {f.name: f.default for half in (GRPOLoss, GRPOLoop) for f in dataclasses.fields(half)}
    assert common.grpo().grpo.to_dict() == defaults


def _assigned_paths(name: str) -> tuple[list[tuple[str, bool]], ast.Call]:
    """(dotted key, whether its value is a reference) of every `c.<key> = ...` in `get_config`, and the call
    that makes `c` (its base)."""
    tree = ast.parse(open(os.path.join(CONFIGS, f"{name}.py"), encoding="utf-8").read())
    body = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_config")
    paths, base = [], None
    for node in ast.walk(body):
        if not isinstance(node, ast.Assign):
            continue
        targets = [t for target in node.targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "c":
                base = node.value
            elif isinstance(target, ast.Attribute):
                parts = []
                while isinstance(target, ast.Attribute):
                    parts.insert(0, target.attr)
                    target = target.value
                assert isinstance(target, ast.Name) and target.id == "c", ast.unparse(node)
                paths.append((".".join(parts), "get_ref" in ast.unparse(node.value)))
    return paths, base


def _value(config, path: str):
    for part in path.split("."):
        config = config[part]
    return config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config


@pytest.mark.parametrize("name,args", EVERY, ids=IDS)
def test_a_config_sets_only_what_it_changes(name, args):
    """Every `c.key = value` in a file changes the value its base (common.sft/grpo or another file) has;
    a reference (`get_ref`) may keep it, as it then follows another key."""
    paths, base_call = _assigned_paths(name)
    base_source = ast.unparse(base_call)
    if base_source in ("common.sft()", "common.grpo()"):
        base = getattr(common, base_call.func.attr)()
    else:  # another experiment file, e.g. tiny_grpo_svg.get_config()
        base = _load(base_call.func.value.id)
    config = _load(name, *args).copy_and_resolve_references()
    base = base.copy_and_resolve_references()
    assert paths, name
    unchanged = [p for p, reference in paths if not reference and _value(config, p) == _value(base, p)]
    assert not unchanged, f"{name} sets {unchanged} to the value {base_source} already has"


def test_the_code_reads_config_keys_directly():
    """No `config.get(key, default)`: the schema declares every key. Allowed: launch/export_hf.py reads a
    finished run's run_config.json (older runs lack keys), policy/image_processor.py a Hugging Face
    preprocessor_config.json (transformers' format, not ours)."""
    allowed = {os.path.join("launch", "export_hf.py"), os.path.join("policy", "image_processor.py")}
    pattern = re.compile(r"\b(config|cfg|_CONFIG\.value|model_block)(\.\w+)*\.get\(")
    found = []
    for package in ("rl", "visual_erm", "launch", "policy", "bench", "configs"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for file in files:
                path = os.path.join(folder, file)
                if file.endswith(".py") and os.path.relpath(path, ROOT) not in allowed:
                    text = open(path, encoding="utf-8").read()
                    found += [f"{os.path.relpath(path, ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert not found, found


def test_warm_start_schedule_follows_its_steps():
    for config in (common.grpo(), _load("tiny_grpo_svg")):
        config.update_from_flattened_dict({"warmstart.steps": 600})  # as --config.warmstart.steps=600 does
        cfg = config.warmstart.optimizer
        assert cfg.total_steps == 600
        schedule = learning_rate_schedule(cfg)
        end = cfg.learning_rate * cfg.end_learning_rate_ratio
        # mid-way the cosine is half down; at 600 it reaches its floor (with total_steps fixed at 150 it
        # was at the floor from step 150 on)
        assert float(schedule(305)) > 0.5 * cfg.learning_rate
        assert abs(float(schedule(600)) - end) < 1e-9


def test_the_8b_grpo_schedule_follows_its_steps():
    config = _load("qwen3vl_8b_grpo", "chart")
    config.update_from_flattened_dict({"total_steps": 100})  # as --config.total_steps=100 does
    assert config.optimizer.total_steps == 100 * config.grpo.epochs * config.grpo.mini_batches


def test_launch_main_refuses_a_misspelt_key_before_any_work(tmp_path):
    """The real command: it exits non-zero naming the key (and the declared one it resembles); no workdir."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-m", "launch.main", f"--workdir={tmp_path / 'run'}",
                           "--config.grpo.clip_hgh=0.3"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "clip_hgh" in done.stderr and '"clip_high"' in done.stderr, done.stderr[-2000:]
    assert not os.path.exists(tmp_path / "run")
