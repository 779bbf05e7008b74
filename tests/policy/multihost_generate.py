"""Sampling with images on 8 CPU devices, as one process or as one of two `jax.distributed` processes.

    python -m tests.policy.multihost_generate MODEL_DIR OUT_JSON [PROCESS_ID PORT]

The global batch is four prompts, each with its own image size and text length; process p of two
feeds prompts 2p and 2p+1. Writes this process's samples to OUT_JSON (suffixed with the process id).
"""
import json
import os
import sys

PROCESSES, LOCAL_DEVICES = 2, 4
PROMPTS = [((24, 32), "Write SVG code for this icon."), ((48, 32), "Reproduce this chart in matplotlib."),
           ((32, 32), "Table?"), ((16, 40), "Describe the image in SVG, keeping every colour and shape exact.")]


def main(model_dir: str, out: str, process_id: int | None = None, port: int | None = None):
    devices = LOCAL_DEVICES * (2 if process_id is None else 1)
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax

    if process_id is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=PROCESSES,
                                   process_id=process_id)
    import numpy as np
    from PIL import Image

    from policy.hf_io import load_pretrained
    from policy.processor import Processor
    from policy.sampler import Sampler, SamplingParams
    from policy.sharding import make_mesh

    mesh = make_mesh((2, 4, 1))
    _, model = load_pretrained(model_dir, mesh=mesh)
    processor = Processor.from_pretrained(model_dir)
    rng = np.random.default_rng(0)
    conversations = []
    for (w, h), text in PROMPTS:
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        conversations.append([{"role": "user", "content": [{"type": "image", "image": Image.fromarray(pixels)},
                                                           {"type": "text", "text": text}]}])
    if process_id is not None:
        conversations = conversations[2 * process_id:2 * process_id + 2]
    batch = processor(conversations, padding_side="left")
    sampler = Sampler(model, pad_id=processor.pad_token_id, mesh=mesh)
    out_samples = sampler.generate(batch["input_ids"], batch["attention_mask"], batch["pixel_values"],
                                   batch["image_grid_thw"], max_new_tokens=12, num_samples=2, rng=7,
                                   params=SamplingParams(temperature=1.0, top_k=50))
    with open(f"{out}.{process_id or 0}", "w") as f:
        json.dump({"tokens": out_samples.tokens.tolist(), "logprobs": out_samples.logprobs.tolist()}, f)
    if process_id is not None:
        jax.distributed.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:2], *(int(a) for a in args[2:]))
