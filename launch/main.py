"""The one entry point for training runs.

    python -m launch.main --config=configs/<file>.py --workdir=DIR [--config.key=value ...]

With no flags it runs the embedded default: configs/tiny_grpo_svg.py (a tiny
policy, a tiny Visual-ERM, the render pool and GRPO on CPU) in workdir/tiny_grpo_svg.
`config.trainer` picks the loop: "visual_erm_sft" (Visual-ERM fine-tuning) or
"grpo" (RL with Visual-ERM rewards). On a multi-host TPU pod every host runs
this same command (see launch/tpu_pod.sh); `--multihost` initialises
`jax.distributed` first (found by the TPU runtime on a pod; elsewhere give
`--coordinator_address`, `--num_processes`, `--process_id`). DIR may be a local
folder or a gs:// URL (see policy/paths.py): checkpoints, metrics and the run's
config go there, written once by process 0. Restarting the same command resumes
from the newest good checkpoint in DIR.
"""
from __future__ import annotations

from launch.jax_platform import choose_platform

choose_platform()  # before anything imports jax: no TPU probe on a CPU host

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "configs", "tiny_grpo_svg.py")
_CONFIG = config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "ml-collections config file", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny_grpo_svg", "where checkpoints, metrics and plots go")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize() (TPU pods)")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (--multihost off a TPU pod)")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "processes of the run (--multihost off a TPU pod)")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index (--multihost off a TPU pod)")


def run(config, workdir: str) -> dict:
    if config.trainer == "visual_erm_sft":
        from visual_erm.train import train
    elif config.trainer == "grpo":
        from rl.trainer import train
    else:
        raise ValueError(f"unknown trainer {config.trainer!r}; expected 'visual_erm_sft' or 'grpo'")
    return train(config, workdir)


def configure_logging() -> None:
    """Our modules' INFO lines (warm start, evaluations, resume) on stderr with a time stamp; orbax,
    jax and absl stay at WARNING (orbax logs every save at INFO)."""
    absl_logging.set_verbosity(absl_logging.WARNING)
    absl_logging.use_python_logging()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for package in ("launch", "rl", "visual_erm", "policy", "render"):
        logging.getLogger(package).setLevel(logging.INFO)


def main(argv) -> None:
    del argv
    configure_logging()
    if _MULTIHOST.value:
        import jax

        if _COORDINATOR.value:  # CPU hosts (tests) talk over gloo
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value,
                                   process_id=_PROCESS_ID.value)
    from policy.compile_cache import use_compilation_cache

    use_compilation_cache(_CONFIG.value.compilation_cache_dir)
    from launch.config_check import ConfigError, check

    try:
        check(_CONFIG.value)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        sys.exit(2)
    final = run(_CONFIG.value, _WORKDIR.value)
    print(json.dumps({"workdir": _WORKDIR.value, "final": final}, indent=1, default=str))
    if any(key.startswith("heldout/") for key in final):
        from rl.heldout import format_table

        print(format_table(final))


if __name__ == "__main__":
    app.run(main)
