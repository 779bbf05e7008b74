"""GRPO of Qwen3-VL-8B-Instruct on svg-to-code with Visual-ERM rewards (TPU pod).

    launch/tpu_pod.sh NAME ZONE configs/qwen3vl_8b_grpo_svg.py gs://BUCKET/grpo_svg \\
        --config.model.checkpoint=/mnt/models/Qwen3-VL-8B-Instruct \\
        --config.judge.checkpoint=/mnt/models/visual-erm-8b

Shared settings live in configs/qwen3vl_8b_grpo_base.py.
"""
from configs import qwen3vl_8b_grpo_base


def get_config():
    tasks = {"sources": [
        {"name": "starvector", "params": {"path": "/mnt/data/svg-stack", "split": "train"}},
        {"name": "synthetic", "params": {"kinds": ["svg"], "start": 0, "stop": 100000}},
    ]}
    return qwen3vl_8b_grpo_base.get_config("svg", tasks, max_new_tokens=4096)
