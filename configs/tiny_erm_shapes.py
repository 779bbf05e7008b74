"""The main job's judge: a tiny Visual-ERM trained on the toy single-shape task, on a CPU.

    python -m launch.main --config=configs/tiny_erm_shapes.py --workdir=runs/tiny_erm_shapes
    python -m launch.export_hf --checkpoint=runs/tiny_erm_shapes --out=rl/judges/tiny_shapes

Generates pixel-verified (reference shape, edited shape, critique) pairs
(`visual_erm/shapes_data.py`: moved, resized, recoloured, reshaped, missing,
extra), trains a byte-level BPE on them and fine-tunes a randomly initialised
tiny Qwen3-VL. The export is the judge `configs/tiny_grpo_svg.py` ships with.
Shared keys and their meaning: configs/common.py.
"""
import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.sft()
    c.batch_size = 16
    c.total_steps = 1500
    c.checkpoint_every = 250
    c.keep_checkpoints = 2

    c.model.max_pixels = 32 * 32
    c.model.text = ml_collections.ConfigDict({"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 4,
                                              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 24,
                                              "mrope_section": (4, 4, 4)})
    # A wider vision tower than Qwen3VLConfig.tiny()'s 16: at 16 a warm-started policy placed, sized and
    # shaped its drawing right but got the colour right a quarter of the time, and the judge must see colour.
    c.model.vision = ml_collections.ConfigDict({"hidden_size": 64, "intermediate_size": 128, "num_heads": 4})

    c.data.generator = "shapes"  # visual_erm/shapes_data.py, not the chart/table/SVG generators
    c.data.kinds = ("svg",)
    c.data.generate_train = 5000
    c.data.generate_eval = 96
    c.data.shard_size = 500
    c.seq_buckets = (256, 320, 384)
    c.patch_buckets = (2048,)  # 16 pairs x 2 images x 64 patches (32x32 px, patch 4)

    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.optimizer.end_learning_rate_ratio = 0.05

    c.eval.every = 500
    c.eval.batches = 4
    c.eval.critiques = 32
    c.eval.max_new_tokens = 160  # four errors take ~130 tokens
    return c
