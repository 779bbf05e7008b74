"""A training step's time on a TPU slice, estimated from its compiled programs, beside its ideal.

Each program's roofline time on one chip is max(FLOPs / peak bf16 FLOP/s, HBM bytes / HBM bandwidth)
(`policy.hlo_cost` counts both per chip, loops included); times its calls per step, summed over the
programs, that is a lower bound on the step (collectives, host work and launch gaps are left out).
The ideal is what the same work needs at best: an update 6 x N x tokens FLOPs, a forward-only pass
2 x N x tokens (N: the parameters a token or a patch multiplies, without the input embedding table;
patches count through the vision tower's parameters), a decode step reading the bf16 weights and the
live KV cache once, spread over every chip. Chip figures are Google's published ones (CHIPS, `source`).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
    family: str
    bf16_flops: float  # peak dense bf16 FLOP/s per chip
    hbm_bandwidth: float  # bytes/s per chip
    hbm_bytes: int  # per chip
    source: str


CHIPS = {
    "v5p": Chip("v5p", 459e12, 2765e9, 95 * GiB,
                "cloud.google.com/tpu/docs/v5p: 459 TFLOP/s bf16, 95 GiB HBM2e at 2,765 GB/s per chip"),
    "v5e": Chip("v5e", 197e12, 819e9, 16 * GiB,
                "cloud.google.com/tpu/docs/v5e: 197 TFLOP/s bf16, 16 GiB HBM2 at 819 GB/s per chip"),
    "v6e": Chip("v6e", 918e12, 1640e9, 32 * GiB,
                "cloud.google.com/tpu/docs/v6e: 918 TFLOP/s bf16, 32 GiB HBM at 1,640 GB/s per chip"),
}


def roofline_seconds(flops: float, nbytes: float, chip: Chip) -> float:
    """Time of work on one chip at its compute or its HBM limit, whichever binds."""
    return max(flops / chip.bf16_flops, nbytes / chip.hbm_bandwidth)


@dataclasses.dataclass(frozen=True)
class Work:
    """Per chip, per call: FLOPs and HBM bytes."""

    flops: float = 0.0
    bytes: float = 0.0

    def seconds(self, chip: Chip) -> float:
        return roofline_seconds(self.flops, self.bytes, chip)


def forward_work(text_params: int, vision_params: int, tokens: int, patches: int, chips: int,
                 passes: int = 1) -> Work:
    """Ideal FLOPs per chip of `passes` x (2 N FLOPs per token or patch): 1 for a forward, 3 for an
    update (forward + backward's two products)."""
    return Work(flops=2.0 * passes * (text_params * tokens + vision_params * patches) / chips)


def decode_work(weight_bytes: float, kv_bytes_per_token: float, prompts: int, prompt_len: int, rows: int,
                steps: int, text_params: int, chips: int) -> Work:
    """Ideal decode of `steps` tokens for `rows` rows: every step reads the weights and the live cache
    once (each prompt's cache once, shared by its samples; each row's generated slots so far), spread
    over `chips`; 2 N FLOPs per generated token."""
    kv_reads = steps * prompts * prompt_len + rows * steps * (steps - 1) / 2
    return Work(flops=2.0 * text_params * rows * steps / chips,
                bytes=(steps * weight_bytes + kv_reads * kv_bytes_per_token) / chips)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One program of the step: its measured work, its ideal work, how often a step runs it."""

    name: str
    work: Work
    ideal: Work
    calls: float


@dataclasses.dataclass(frozen=True)
class StepEstimate:
    seconds: float
    ideal_seconds: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.ideal_seconds if self.ideal_seconds else math.inf


def estimate_step(phases: Sequence[Phase], chip: Chip) -> StepEstimate:
    """Sum over the phases of calls x roofline time, and the same for their ideal work."""
    return StepEstimate(sum(p.calls * p.work.seconds(chip) for p in phases),
                        sum(p.calls * p.ideal.seconds(chip) for p in phases))


def step_line(fitting: int, programs: int, peak_bytes: int, chip: Chip, estimate: StepEstimate) -> str:
    """`fits N/M programs; peak X GiB of Y GiB per chip; step >= S s (ideal I s, R x)`."""
    return (f"fits {fitting}/{programs} programs; peak {peak_bytes / GiB:.2f} GiB of {chip.hbm_bytes / GiB:.0f} "
            f"GiB per chip; step >= {estimate.seconds:.1f} s (ideal {estimate.ideal_seconds:.1f} s, "
            f"{estimate.ratio:.2f} x)")
