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
    c.batch_size = 8
    c.total_steps = 300
    c.checkpoint_every = 50

    c.model.vocab_size = 1024
    c.model.max_pixels = 48 * 48
    # A small decoder: big enough to learn the critique's JSON in minutes on a CPU.
    c.model.text = ml_collections.ConfigDict({"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 4,
                                              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 24,
                                              "mrope_section": (4, 4, 4)})

    c.data.patch_buckets = (2560,)  # 8 pairs x 2 images x <= 144 patches (48x48 px, patch 4)

    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.optimizer.end_learning_rate_ratio = 0.1

    c.eval.every = 50
    c.eval.batches = 6
    c.eval.critiques = 24  # held-out pairs the judge critiques for parse rate and bench F1
    c.eval.max_new_tokens = 256
    # Greedy for every kind: the published sampling (presence penalty 1.5 on every
    # repeated token) is tuned for an 8B judge; it breaks a tiny model's JSON.
    c.eval.greedy = True
    return c
