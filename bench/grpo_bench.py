"""One GRPO step on the tiny config, timed: sampling, rendering, reward, update.

    python bench/grpo_bench.py [--steps 3]

Peer, run in this same script: the strictly sequential loop (sample every
micro-batch, then render everything, then judge) against the overlapped one
(render micro-batch k while the device samples k+1). Also prints the per-chip
memory of the 8B GRPO setup (policy + AdamW + frozen reference + Visual-ERM) on
a 64-chip (v5p-64) fsdp mesh, from shapes only.
NOTE: on a CPU-only host the "device" and the render workers share the same
cores, so overlap can only win what the cores leave idle; on TPU it hides
rendering behind sampling.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from policy import cli  # noqa: E402
from policy.config import Qwen3VLConfig  # noqa: E402
from rl.trainer import GRPOTrainer  # noqa: E402


def tiny_config(**overrides):
    spec = importlib.util.spec_from_file_location("tiny_grpo_svg", os.path.join(ROOT, "configs", "tiny_grpo_svg.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update_from_flattened_dict(overrides)
    return config


def time_steps(trainer: GRPOTrainer, overlap: bool, steps: int, first: int) -> dict:
    trainer.rollouts.worker.overlap = overlap
    rows = []
    for step in range(first, first + steps):
        metrics = trainer.rl_step(step)
        rows.append({k: metrics[k] for k in ("time/sample", "time/render_wait", "time/judge", "time/reward",
                                             "time/update", "time/step")})
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def memory_8b(n_devices: int = 64) -> str:
    from model_bench import sharded_elements

    _, per_dev, _ = sharded_elements(Qwen3VLConfig.qwen3vl_8b(), n_devices)
    gib = 2**30
    parts = {"policy params (fp32)": per_dev * 4, "AdamW mu+nu (fp32)": per_dev * 8,
             "frozen reference (bf16)": per_dev * 2, "Visual-ERM judge (bf16)": per_dev * 2}
    lines = [f"8B GRPO memory per chip ({n_devices}-chip fsdp mesh, v5p-64; parameters only, no activations/KV):"]
    lines += [f"  {name:26s} {value / gib:6.3f} GiB" for name, value in parts.items()]
    lines.append(f"  {'total':26s} {sum(parts.values()) / gib:6.3f} GiB of 95 GiB HBM per v5p chip")
    return "\n".join(lines)


FLAGS = flags.FlagValues()
flags.DEFINE_integer("steps", 3, "timed GRPO steps per mode", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_string("reward", "visual_erm", "the run's reward", flag_values=FLAGS)


def main() -> None:
    args = cli.parse(FLAGS, None, __doc__)
    workdir = tempfile.mkdtemp(prefix="grpo-bench-")
    config = tiny_config(reward=args.reward, **{"micro_batches": 4, "render_workers": 2, "mesh_shape": (1, 1, 1)})
    trainer = GRPOTrainer(config, workdir)
    try:
        trainer.start()
        trainer.rl_step(1)  # compile everything once
        overlapped = time_steps(trainer, True, args.steps, 2)
        sequential = time_steps(trainer, False, args.steps, 2)
    finally:
        trainer.close()
    print(f"tiny GRPO step ({config.prompts_per_step} prompts x {config.group_size} samples, "
          f"{config.micro_batches} micro-batches, reward {args.reward}); median of {args.steps} steps, seconds:")
    print(f"{'':12s} {'sample':>8s} {'render wait':>12s} {'judge':>8s} {'reward':>8s} {'update':>8s} {'step':>8s}")
    for name, t in (("overlapped", overlapped), ("sequential", sequential)):
        print(f"{name:12s} {t['time/sample']:8.2f} {t['time/render_wait']:12.2f} {t['time/judge']:8.2f} "
              f"{t['time/reward']:8.2f} {t['time/update']:8.2f} {t['time/step']:8.2f}")
    print(f"overlapped vs sequential: {sequential['time/step'] / overlapped['time/step']:.2f}x faster per step "
          f"(target >= 1.3x); render wait hidden: "
          f"{1 - overlapped['time/render_wait'] / max(sequential['time/render_wait'], 1e-9):.0%}")
    print(memory_8b())


if __name__ == "__main__":
    main()
