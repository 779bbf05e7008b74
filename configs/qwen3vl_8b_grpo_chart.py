"""GRPO of Qwen3-VL-8B-Instruct on chart-to-code with Visual-ERM rewards (TPU pod).

    launch/tpu_pod.sh NAME ZONE configs/qwen3vl_8b_grpo_chart.py gs://BUCKET/grpo_chart \\
        --config.model.checkpoint=/mnt/models/Qwen3-VL-8B-Instruct \\
        --config.judge.checkpoint=/mnt/models/visual-erm-8b

Shared settings live in configs/qwen3vl_8b_grpo_base.py.
"""
from configs import qwen3vl_8b_grpo_base


def get_config():
    tasks = {"sources": [
        {"name": "chartmimic", "params": {"path": "/mnt/data/ChartMimic/dataset", "split": "direct_600"}},
        {"name": "synthetic", "params": {"kinds": ["chart"], "start": 0, "stop": 100000}},
    ]}
    return qwen3vl_8b_grpo_base.get_config("chart", tasks, max_new_tokens=2048)
