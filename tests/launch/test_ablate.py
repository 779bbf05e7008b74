"""The reward comparison end to end in its reduced form: every reward runs (or is reported failed),
the held-out metric is summarised per reward, the probes give verdicts, the table and plot are written."""
import importlib.util
import json
import os

import pytest

from launch import ablate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REWARDS = ("visual_erm", "oracle_critic", "ssim", "text_similarity", "embedding_cosine")


def reduced_config():
    spec = importlib.util.spec_from_file_location("tiny_grpo_svg", os.path.join(ROOT, "configs", "tiny_grpo_svg.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update_from_flattened_dict({"mesh_shape": (1, 1, 1), "total_steps": 1, "checkpoint_every": 100,
                                       "warmstart.steps": 4, "prompts_per_step": 2, "group_size": 4,
                                       "micro_batches": 1, "grpo.epochs": 1, "heldout.n": 2,
                                       "heldout.min_image_dependence": 0.0})
    return config


@pytest.mark.slow
def test_reduced_comparison_reports_every_reward(tmp_path):
    table = ablate.ablate(reduced_config(), REWARDS, ["0"], str(tmp_path), probe_tasks=1)
    assert list(table) == list(REWARDS)
    for reward, entry in table.items():
        if entry["failed"]:  # a crashing reward is a reported result, with its error
            assert not entry["metrics"] and all(entry["failed"].values())
            continue
        iou = entry["metrics"]["heldout/iou"]
        assert 0.0 <= iou["after_mean"] <= 1.0 and iou["after_std"] == 0.0  # one seed
        assert 0.0 <= iou["start_mean"] <= 1.0
        assert len(iou["vs_baseline_reward"]) == (reward != "visual_erm")  # paired with visual_erm's seed 0
        assert set(entry["probes"]) == set(ablate.PROBES)
    # text similarity pays for a near-copy that does not even render; rewards that look at pixels do not
    assert "broken_copy" in table["text_similarity"]["fooled_by"]
    assert "broken_copy" not in table["ssim"]["fooled_by"]
    assert "broken_copy" not in table["visual_erm"]["fooled_by"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["runs"]) == set(REWARDS)
    table_md = (tmp_path / "table.md").read_text()
    assert all(f"| {reward} |" in table_md for reward in REWARDS)
    assert "| *blank canvas* |" in table_md and "| *best constant* |" in table_md
    assert os.path.getsize(tmp_path / "ablate.png") > 1000
