"""Visual-ERM critiques on 8 CPU devices, as one process or one of two `jax.distributed` processes
holding UNEVEN numbers of pairs (9 and 3, of mixed kinds): every process must make the same sampler
calls (collectives) whatever its own counts.

    python -m tests.visual_erm.multihost_judge MODEL_DIR OUT_JSON [PROCESS_ID PORT]

Writes this process's critique texts to OUT_JSON (suffixed with the process id).
"""
import json
import os
import sys

PROCESSES, LOCAL_DEVICES = 2, 4
SPLIT = 9  # process 0 judges pairs [0, 9), process 1 pairs [9, 12)
KINDS = ["chart", "svg", "table", "chart", "chart", "svg", "chart", "table", "chart", "svg", "svg", "chart"]


def pairs():
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    def image():
        return Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))

    return [(image(), image()) for _ in KINDS]


def main(model_dir: str, out: str, process_id: int | None = None, port: int | None = None):
    devices = LOCAL_DEVICES * (2 if process_id is None else 1)
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax

    if process_id is not None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=PROCESSES,
                                   process_id=process_id)
    from policy.sharding import make_mesh
    from visual_erm.judge import GREEDY_SETTINGS, VisualERM

    judge = VisualERM.from_pretrained(model_dir, mesh=make_mesh((2, 4, 1)), max_new_tokens=6, batch_size=4,
                                      settings=GREEDY_SETTINGS)
    mine = slice(None) if process_id is None else slice(0, SPLIT) if process_id == 0 else slice(SPLIT, None)
    kinds, both = KINDS[mine], pairs()[mine]
    texts = judge.critique_texts(kinds, [r for r, _ in both], [c for _, c in both], rng=jax.random.key(3))
    critiques = judge.critique(kinds, [r for r, _ in both], [c for _, c in both], rng=jax.random.key(3))
    with open(f"{out}.{process_id or 0}", "w") as f:
        json.dump({"texts": texts, "valid": [c.valid for c in critiques]}, f)
    if process_id is not None:
        jax.distributed.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:2], *(int(a) for a in args[2:]))
