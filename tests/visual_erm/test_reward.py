"""Critique -> reward, with worked numbers."""
import json

import pytest

from visual_erm.reward import (
    RewardConfig,
    critique_reward,
    reward_from_config,
    table_severity_reward,
)
from visual_erm.schema import Critique, Discrepancy

# severities 3 + 2 + 1 = 6
SIX = Critique((Discrepancy("data_error", 3), Discrepancy("text_error", 2), Discrepancy("style_error", 1)))
INVALID = Critique.invalid("no JSON")


def test_worked_values_default_scale():
    assert critique_reward(SIX, "chart") == pytest.approx(1 - 6 / 50)  # 0.88
    assert critique_reward(Critique(), "chart") == 1.0  # valid "no discrepancy"
    assert critique_reward(INVALID, "chart") == pytest.approx(1 - 25 / 50)  # 0.5
    many = Critique(tuple(Discrepancy("data_error", 3) for _ in range(20)))  # total 60 > 50
    assert critique_reward(many, "chart") == 0.0


def test_custom_scale():
    assert critique_reward(SIX, "chart", max_severity=10) == pytest.approx(0.4)  # 1 - 6/10
    assert critique_reward(INVALID, "chart", max_severity=10, invalid_severity=10) == 0.0
    assert critique_reward(INVALID, "chart", max_severity=100, invalid_severity=10) == pytest.approx(0.9)


def test_invalid_is_worse_than_a_clean_critique_but_not_minimal():
    assert critique_reward(INVALID) < critique_reward(Critique())
    assert critique_reward(INVALID) > critique_reward(Critique((Discrepancy("data_error", 3),) * 10))


def test_raw_text_is_parsed():
    text = '<think>ok</think>{"errors": [{"category": "Data Error", "severity": "major"}]}'
    assert critique_reward(text, "chart") == pytest.approx(1 - 3 / 50)
    assert critique_reward("I cannot judge this.", "chart") == pytest.approx(0.5)


def test_table_judge_form():
    # The published table judge: "type" instead of "category", no location; reward = -sum(severity).
    text = json.dumps(
        {"errors": [{"type": "numeric_error", "severity": 2, "description": "12 vs 21"},
                    {"type": "text_error", "severity": 1, "description": "typo in header"}]}
    )  # fmt: skip
    assert table_severity_reward(text) == -3.0
    assert table_severity_reward('{"errors": []}') == 0.0
    assert table_severity_reward("garbage") == -4.0
    assert table_severity_reward("garbage", failure_value=-10.0) == -10.0
    config = RewardConfig(mode="table_severity")
    assert reward_from_config(text, "table", config) == -3.0
    # The same critique through the scaled reward: 1 - 3/50.
    assert critique_reward(text, "table") == pytest.approx(0.94)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        critique_reward(SIX, "video")
    with pytest.raises(ValueError):
        critique_reward(SIX, "chart", max_severity=0)
    with pytest.raises(ValueError):
        critique_reward(SIX, "chart", invalid_severity=-1)
    with pytest.raises(ValueError):
        RewardConfig(mode="other")
    with pytest.raises(ValueError):
        RewardConfig(failure_value=float("nan"))
