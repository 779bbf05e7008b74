"""Compile every program of a run for a TPU topology, on this (CPU) machine: does it fit, before the pod?

    python -m launch.aot --config=configs/qwen3vl_8b_grpo.py:chart --topology=v5p-64 [--config.key=value ...]
    python -m launch.aot --config=configs/qwen3vl_8b_erm.py --topology=v5p-128 --num_slices=2  # DCN data axis

Prints per program the per-chip argument, temporary, output and peak bytes (XLA's memory analysis), the
run state live beside it and the total, FLOPs and HBM bytes per call (loops counted) and seconds per
step at the chip's roofline, then `fits N/M programs; peak X GiB of Y GiB per chip; step >= S s
(ideal I s, R x)`. Exit status 1 when a program's total does not fit with `--headroom` of HBM to spare
(or it fails to build), 2 without libtpu. With `--config.compilation_cache_dir=DIR` the compiled
programs are written to the run's persistent compilation cache.
`--only=decode,update` compiles a subset; `--vision_patches=16384,65536` adds the vision tower alone at
those patch counts.
"""
from __future__ import annotations

import sys

from absl import app, flags
from ml_collections import config_flags

from policy import aot
from policy.compile_cache import use_compilation_cache

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml-collections config file", lock_config=True)
_TOPOLOGY = flags.DEFINE_string("topology", "v5p-64", "TPU slice: v5p-N (TensorCores), v5e-N or v6e-N (chips)")
_HEADROOM = flags.DEFINE_float("headroom", 0.1, "fraction of HBM a program must leave free to count as fitting")
_ONLY = flags.DEFINE_list("only", [], "compile only the programs whose names contain one of these (e.g. decode)")
_VISION = flags.DEFINE_list("vision_patches", [], "also compile the vision tower alone at these patch counts")
_SLICES = flags.DEFINE_integer("num_slices", 1, "slices of --topology joined by DCN (a data axis across them)")
_DUMP = flags.DEFINE_string("dump_hlo", "", "write each compiled program's optimized HLO into this directory")


def programs(config, mesh, hosts: int) -> list:
    if config.trainer == "visual_erm_sft":
        from visual_erm.aot import sft_programs

        return sft_programs(config, mesh, hosts)
    if config.trainer == "grpo":
        from rl.aot import grpo_programs

        return grpo_programs(config, mesh, hosts)
    raise ValueError(f"unknown trainer {config.trainer!r}; expected 'visual_erm_sft' or 'grpo'")


def main(argv) -> int:
    del argv
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("--config=configs/<file>.py is required")
    try:
        aot.parse_topology(_TOPOLOGY.value)
    except ValueError as e:  # before libtpu loads: a typo costs no compile
        print(f"--topology={_TOPOLOGY.value}: {e}", file=sys.stderr)
        return 2
    try:
        topo = aot.topology(_TOPOLOGY.value, _SLICES.value)
    except aot.LibTPUMissing as e:
        print(e, file=sys.stderr)
        return 2
    if use_compilation_cache(config.compilation_cache_dir):  # warm the run's cache
        print(f"compiled programs go to the compilation cache {config.compilation_cache_dir}", file=sys.stderr)
    mesh = aot.topology_mesh(topo, config.mesh_shape)
    todo = programs(config, mesh, topo.hosts)
    if _ONLY.value:
        todo = [p for p in todo if any(part in p.name for part in _ONLY.value)]
    vision_config = aot.binned_model_config(aot.run_model_config(config.model), config.model, config.max_side)
    todo += [aot.vision_program(vision_config, mesh, int(n)) for n in _VISION.value]
    print("\n".join(aot.report_header(topo, _HEADROOM.value)), flush=True)
    reports = []
    for program in todo:
        reports.append(aot.compile_program(program, mesh, _DUMP.value or None))
        print(aot.report_line(reports[-1], topo, _HEADROOM.value), flush=True)
    print(aot.summary_line(reports, topo, _HEADROOM.value))
    return 0 if all(aot.fits(r, topo.hbm_bytes, _HEADROOM.value) for r in reports) else 1


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
