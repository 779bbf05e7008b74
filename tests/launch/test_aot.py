"""launch.aot: a tiny run's programs compile for a real TPU topology through the trainers' own code path,
and the report moves the right way with the shapes. Needs libtpu (the `tpu` extra, part of `dev`)."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from policy import aot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None,
                                  reason='libtpu is not installed (pip install -e ".[tpu]")')


def load_config(name, *args, **overrides):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(*args)
    config.update_from_flattened_dict(overrides)
    return config


def test_topology_names_follow_cloud_tpu():
    assert aot.parse_topology("v5p-64") == ("v5p", 32)  # v5p counts TensorCores, two per chip
    assert aot.parse_topology("v5e-256") == ("v5e", 256)
    assert aot.chip_grid("v5p", 32) == (2, 4, 4) and aot.chip_grid("v5p", 64) == (4, 4, 4)
    assert aot.chip_grid("v5e", 8) == (2, 4) and aot.chip_grid("v6e", 256) == (16, 16)
    for bad in ("v4-8", "v5p-7", "v5e-24", "tpu"):
        with pytest.raises(ValueError):
            aot.chip_grid(*aot.parse_topology(bad))


def test_without_libtpu_the_error_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "libtpu" else real(name, *a))
    with pytest.raises(aot.LibTPUMissing, match=r'pip install -e "\.\[tpu\]"'):
        aot.topology("v5p-8")


def test_summary_line_counts_fitting_programs_with_their_resident_state_and_the_step():
    topo = aot.Topology("v5e-4", "v5e", (2, 2), (None,) * 4, 16 * aot.GiB)  # 197e12 FLOP/s, 819e9 B/s
    one_second = aot.Work(flops=197e12)
    reports = [aot.ProgramReport("a", temp_bytes=12 * aot.GiB, resident_bytes=2 * aot.GiB, flops=197e12, calls=2,
                                 ideal=aot.Work(flops=197e12 / 2)),
               # fits alone (13 GiB) but not beside the 2 GiB of state the run keeps while it runs
               aot.ProgramReport("b", temp_bytes=13 * aot.GiB, resident_bytes=2 * aot.GiB, bytes_accessed=819e9,
                                 ideal=aot.Work(bytes=819e9 / 2)),
               aot.ProgramReport("c", error="RESOURCE_EXHAUSTED", ideal=one_second)]
    assert aot.summary_line(reports, topo, 0.1) == (
        "fits 1/3 programs; peak 15.00 GiB of 16 GiB per chip; step >= 3.0 s (ideal 1.5 s, 2.00 x)")


def _compile(programs, name, mesh):
    (program,) = [p for p in programs if p.name == name]
    report = aot.compile_program(program, mesh)
    assert report.error is None, report.error
    return report


@needs_libtpu
@pytest.mark.slow  # two compilations for a TPU topology (~40 s on 2 idle cores)
def test_update_step_temporaries_grow_with_the_batch():
    from rl.aot import grpo_programs

    topo = aot.topology("v5p-8")
    mesh = aot.topology_mesh(topo, ())
    temps = []
    for prompts in (2, 8):  # 4x the rows: activations outgrow the fixed optimizer temporaries of a tiny model
        config = load_config("tiny_grpo_svg", reward="mse", prompts_per_step=prompts, group_size=4, micro_batches=1)
        report = _compile(grpo_programs(config, mesh, topo.hosts), "update step", mesh)
        assert 0 < report.peak_bytes < topo.hbm_bytes and report.flops > 0 and report.bytes_accessed > 0
        temps.append(report.temp_bytes)
    assert temps[1] > 1.5 * temps[0]


@needs_libtpu
def test_vision_temporaries_grow_linearly_with_the_image_count():
    """4x the images at a fixed size (64 patches each): ~4x the temporaries, not ~16x (per-image
    attention; an [N, N] score matrix over every patch of the call failed this)."""
    config = load_config("tiny_grpo_svg")
    topo = aot.topology("v5p-8")
    mesh = aot.topology_mesh(topo, ())
    model_config = aot.run_model_config(config.model)
    small, large = (aot.compile_program(aot.vision_program(model_config, mesh, 64 * n), mesh) for n in (8, 32))
    assert large.temp_bytes < 6 * small.temp_bytes


@needs_libtpu
@pytest.mark.slow  # a subprocess with two compilations for a TPU topology
def test_cli_compiles_every_sft_program_and_reports_the_fit():
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-m", "launch.aot", "--config=configs/tiny_erm.py", "--topology=v5e-4",
                          "--config.batch_size=4"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("v5e-4: 4 chips (2x2), 1 hosts, 16 GiB HBM per chip")
    assert any(line.startswith("train step") and "yes" in line for line in lines)
    assert any(line.startswith("eval step") and "yes" in line for line in lines)
    assert re.fullmatch(r"fits 2/2 programs; peak [0-9.]+ GiB of 16 GiB per chip; step >= [0-9.]+ s "
                        r"\(ideal [0-9.]+ s, [0-9.]+ x\)", lines[-1]), lines[-1]


@needs_libtpu
def test_two_slices_put_the_data_axis_across_dcn():
    topo = aot.topology("v5p-8", num_slices=2)  # 2 x 4 chips
    assert (topo.name, topo.chips, topo.slices, topo.hosts) == ("2 x v5p-8", 8, 2, 2)
    mesh = aot.topology_mesh(topo, ())
    assert dict(mesh.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
    for row, devices in enumerate(mesh.devices):  # each data index is one slice: fsdp stays on ICI
        assert {d.slice_index for d in devices.ravel()} == {row}
    assert dict(aot.topology_mesh(topo, (2, 2, 2)).shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    with pytest.raises(ValueError, match="multiple of the 2 TPU slices"):
        aot.topology_mesh(topo, (1, 8, 1))


def test_cli_refuses_an_unknown_topology_before_loading_libtpu():
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-m", "launch.aot", "--config=configs/tiny_erm.py", "--topology=v9-8"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--topology=v9-8: unknown TPU topology 'v9-8'" in out.stderr, out.stderr[-2000:]
    assert out.stdout == ""
