"""Shared config blocks: references that must follow the keys they derive from."""
import importlib.util
import os

from configs import common
from policy.optimizer import learning_rate_schedule

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIGS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


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
