"""The optimizers of a GRPO run, built in one place for the trainer and for `launch.aot`.

Why its own module: the RL optimizer is `policy.optimizer.make_optimizer` wrapped in `optax.MultiSteps`
when `grpo.grad_accumulation > 1` (its accumulator is 4 bytes a parameter, and the update program
changes with it); an ahead-of-time compile that built the optimizer itself compiled a different update
than the run's. Both call `grpo_optimizers`, and `tests/rl/test_aot.py` checks the programs agree.
"""
from __future__ import annotations

import optax

from policy.optimizer import make_optimizer


def grpo_optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """(RL optimizer, warm-start optimizer) of a GRPO config: `optimizer` averaged over
    `grpo.grad_accumulation` micro-steps per update, and `warmstart.optimizer` as it is."""
    tx = make_optimizer(config.optimizer)
    accumulate = int(config.grpo.grad_accumulation)
    if accumulate > 1:  # grads of that many micro-steps are averaged into one update
        tx = optax.MultiSteps(tx, every_k_schedule=accumulate)
    return tx, make_optimizer(config.warmstart.optimizer)
