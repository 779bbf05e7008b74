"""Wrong config values fail before anything is built, naming the key and what is allowed."""
import importlib.util
import os
import subprocess
import sys

import pytest

from launch.config_check import ConfigError, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name: str, **overrides):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update_from_flattened_dict(overrides)
    return config


def a_file(tmp_path):
    path = tmp_path / "not_a_folder.txt"
    path.write_text("x")
    return str(path)


# (config file, overrides, key named in the message, a word of the allowed values or the problem)
WRONG = [
    ("tiny_grpo_svg", {"reward": "ssimm"}, "reward", "text_similarity"),
    ("tiny_grpo_svg", {"trainer": "ppo"}, "trainer", "visual_erm_sft"),
    ("tiny_grpo_svg", {"tasks.name": "chartmimik"}, "tasks.name", "chartmimic"),
    ("tiny_grpo_svg", {"judge.checkpoint": "/nonexistent/judge"}, "judge.checkpoint", "config.json"),
    ("tiny_grpo_svg", {"mesh_shape": (1, 3, 1)}, "mesh_shape", "divides 8"),
    ("tiny_grpo_svg", {"prompts_per_step": 5}, "prompts_per_step", "multiples of 2"),
    ("tiny_grpo_svg", {"grpo.mini_batches": 3}, "grpo.mini_batches", "dividing"),
    ("tiny_grpo_svg", {"writers": "tensorboard,mlflow"}, "writers", "wandb"),
    ("tiny_erm", {"model.checkpoint": "/nonexistent/model"}, "model.checkpoint", "config.json"),
    ("tiny_erm", {"model.remat": "everything"}, "model.remat", "dots_no_batch"),
    ("tiny_erm", {"model.text": {"hiden_size": 96}}, "model.text.hiden_size", "hidden_size"),
    ("tiny_erm", {"data.train_dir": "FILE", "data.eval_dir": "FILE"}, "data.train_dir", "make_data folder"),
    ("tiny_erm", {"data.train_dir": "tfds:visual_erm_reward/tiny:train@/nonexistent",
                  "data.eval_dir": "tfds:visual_erm_reward/tiny:validation@/nonexistent"}, "data.train_dir", "TFDS"),
]


@pytest.mark.parametrize("name,overrides,key,allowed", WRONG, ids=[w[2] for w in WRONG])
def test_a_wrong_value_is_refused_naming_its_key(name, overrides, key, allowed, tmp_path):
    overrides = {k: a_file(tmp_path) if v == "FILE" else v for k, v in overrides.items()}
    config = load(name)
    if "writers" in overrides:
        config.writers = overrides.pop("writers")
    config.update_from_flattened_dict(overrides)
    with pytest.raises(ConfigError) as error:
        check(config)
    assert error.value.key == key and f"--config.{key}=" in str(error.value) and allowed in str(error.value)


def test_the_shipped_configs_pass():
    check(load("tiny_grpo_svg"))
    check(load("tiny_erm"))


def test_the_command_line_exits_non_zero_before_writing_anything(tmp_path):
    """Through `python -m launch.main`, jax choosing its platform as on a CPU host: exit 2, the key and
    the allowed rewards on stderr, no workdir, and no libtpu line."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    env["PYTHONPATH"] = ROOT
    done = subprocess.run([sys.executable, "-m", "launch.main", f"--workdir={tmp_path / 'run'}",
                           "--config.reward=ssimm"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--config.reward='ssimm'" in done.stderr and "visual_erm, oracle_critic, text_similarity" in done.stderr
    assert not os.path.exists(tmp_path / "run")
    assert "tpu" not in done.stderr.lower(), done.stderr
