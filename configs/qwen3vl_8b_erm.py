"""Visual-ERM SFT from Qwen3-VL-8B-Instruct on a TPU pod (v5p-64: 32 chips), published-scale settings.

    launch/tpu_pod.sh NAME ZONE configs/qwen3vl_8b_erm.py gs://BUCKET/erm_8b \\
        --config.model.checkpoint=/mnt/models/Qwen3-VL-8B-Instruct \\
        --config.data.train_dir=/mnt/data/reward/train --config.data.eval_dir=/mnt/data/reward/eval

Check the memory first, on any CPU machine with libtpu: `python -m launch.aot
--config=configs/qwen3vl_8b_erm.py --topology=v5p-64`. The model and reward data come from local
paths (nothing is downloaded); write the data once with `python -m visual_erm.make_data --out=... --n=...`.
Shared keys and their meaning: configs/common.py.
"""
import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.sft()
    # mesh_shape stays (): FSDP over every chip of the slice; e.g. (1, 8, 4) adds tensor parallelism.
    # model.checkpoint (REQUIRED for training): a local Qwen3-VL-8B-Instruct directory; data.train_dir and
    # data.eval_dir (REQUIRED): reward-data folders written by visual_erm.make_data.
    c.batch_size = 128  # global: reward pairs per step
    c.total_steps = 3000
    c.checkpoint_every = 250
    c.loss_chunk_size = 512  # never materialise [batch, length, 151936] logits

    c.model.preset = "qwen3vl_8b"
    c.model.dtype = "bfloat16"
    c.model.scan_layers = True
    c.model.remat = "full"

    c.max_side = 1024  # the judge sees images at most 1,024 px on the longer side
    c.seq_buckets = (2048, 3072, 4096, 6144, 8192)
    # Per host, before the gather: 16 pairs x 2 images x <= 4,096 patches on v5p-64 (8 hosts); up to
    # 128 pairs on one host.
    c.patch_buckets = (16384, 32768, 65536, 131072, 262144, 524288, 1048576)

    c.optimizer.learning_rate = 1e-5
    c.optimizer.warmup_steps = 100
    c.optimizer.end_learning_rate_ratio = 0.0

    c.eval.every = 250
    c.eval.batches = 16
    # Sampled-critique evaluation is not split across hosts yet, so a pod run (many hosts) evaluates
    # held-out loss only; score critiques with `python -m visual_erm.bench` on an exported checkpoint,
    # or set this to e.g. 256 on a single-host slice (v5p-8).
    c.eval.critiques = 0
    c.eval.max_new_tokens = 1024
    c.eval.greedy = False  # the published judge sampling settings
    return c
