"""Visual-ERM SFT at toy scale on a laptop CPU: data, tokenizer and model made locally.

    python -m launch.main --config=configs/tiny_erm.py --workdir=/tmp/tiny_erm

Generates ~600 reward pairs with the render pool, trains a byte-level BPE
tokenizer on them, and fine-tunes a randomly initialised tiny Qwen3-VL.
Shared keys and their meaning: configs/common.py.
"""
import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.sft()
    c.total_steps = 300
    # A small decoder: big enough to learn the critique's JSON in minutes on a CPU.
    c.model.text = ml_collections.ConfigDict({"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 4,
                                              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 24,
                                              "mrope_section": (4, 4, 4)})
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    return c
