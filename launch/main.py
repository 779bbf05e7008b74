"""The one entry point for training runs.

    python -m launch.main --config=configs/<file>.py --workdir=DIR [--config.key=value ...]

With no flags it runs the embedded default: configs/tiny_grpo_svg.py (a tiny
policy, a tiny Visual-ERM, the render pool and GRPO on CPU) in workdir/tiny_grpo_svg.
`config.trainer` picks the loop: "visual_erm_sft" (Visual-ERM fine-tuning) or
"grpo" (RL with Visual-ERM rewards). On a multi-host TPU pod every host runs
this same command (see launch/tpu_pod.sh); `--multihost` initialises
`jax.distributed` first. Restarting the same command resumes from the newest
good checkpoint in DIR.
"""
from __future__ import annotations

import json
import logging
import os

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "configs", "tiny_grpo_svg.py")
_CONFIG = config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "ml-collections config file", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny_grpo_svg", "where checkpoints, metrics and plots go")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize() (TPU pods)")


def run(config, workdir: str) -> dict:
    if config.trainer == "visual_erm_sft":
        from visual_erm.train import train
    elif config.trainer == "grpo":
        from rl.trainer import train
    else:
        raise ValueError(f"unknown trainer {config.trainer!r}; expected 'visual_erm_sft' or 'grpo'")
    return train(config, workdir)


def main(argv) -> None:
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every save at INFO
    if _MULTIHOST.value:
        import jax

        jax.distributed.initialize()
    from policy.compile_cache import use_compilation_cache

    use_compilation_cache(_CONFIG.value.get("compilation_cache_dir"))
    final = run(_CONFIG.value, _WORKDIR.value)
    print(json.dumps({"workdir": _WORKDIR.value, "final": final}, indent=1, default=str))
    if any(key.startswith("heldout/") for key in final):
        from rl.heldout import format_table

        print(format_table(final))


if __name__ == "__main__":
    app.run(main)
