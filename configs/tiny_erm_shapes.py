"""The main job's judge: a tiny Visual-ERM trained on the toy single-shape task, on a CPU.

    python -m launch.main --config=configs/tiny_erm_shapes.py --workdir=runs/tiny_erm_shapes
    python -m launch.export_hf --checkpoint=runs/tiny_erm_shapes --out=rl/judges/tiny_shapes

Generates pixel-verified (reference shape, edited shape, critique) pairs
(`visual_erm/shapes_data.py`: moved, resized, recoloured, reshaped, missing,
extra), trains a byte-level BPE on them and fine-tunes a randomly initialised
tiny Qwen3-VL. The export is the judge `configs/tiny_grpo_svg.py` ships with.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.trainer = "visual_erm_sft"
    c.seed = 0
    c.mesh_shape = ()
    c.batch_size = 16
    c.total_steps = 1500
    c.checkpoint_every = 250
    c.keep_checkpoints = 2
    c.loss_chunk_size = None

    c.model = ml_collections.ConfigDict()
    c.model.checkpoint = ""  # empty: build a tiny model in workdir/base_model
    c.model.dtype = "float32"
    c.model.vocab_size = 1024
    c.model.max_pixels = 32 * 32
    c.model.text = ml_collections.ConfigDict({"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 4,
                                              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 24,
                                              "mrope_section": (4, 4, 4)})
    # A wider vision tower than Qwen3VLConfig.tiny()'s 16: at 16 a warm-started policy placed, sized and
    # shaped its drawing right but got the colour right a quarter of the time, and the judge must see colour.
    c.model.vision = ml_collections.ConfigDict({"hidden_size": 64, "intermediate_size": 128, "num_heads": 4})

    c.data = ml_collections.ConfigDict()
    c.data.generator = "shapes"  # visual_erm/shapes_data.py, not the chart/table/SVG generators
    c.data.train_dir = ""
    c.data.eval_dir = ""
    c.data.kinds = ("svg",)
    c.data.generate_train = 5000
    c.data.generate_eval = 96
    c.data.render_workers = 2
    c.data.shard_size = 500
    c.data.max_side = None
    c.data.seq_buckets = (256, 320, 384)
    c.data.patch_buckets = (2048,)  # 16 pairs x 2 images x 64 patches (32x32 px, patch 4)

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.optimizer.total_steps = c.get_ref("total_steps")
    c.optimizer.end_learning_rate_ratio = 0.05
    c.optimizer.weight_decay = 0.0
    c.optimizer.clip_norm = 1.0

    c.eval = ml_collections.ConfigDict()
    c.eval.every = 500
    c.eval.batches = 4
    c.eval.critiques = 32
    c.eval.max_new_tokens = 160  # four errors take ~130 tokens
    c.eval.greedy = True
    return c
