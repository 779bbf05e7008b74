"""Runs whose every input and output is in a bucket, against a local GCS emulator (tests/gcs_emulator.py),
which are also the kill -9 / resume tests of both trainers (a local workdir goes through the same
`policy.paths` layer):
SFT from a TFDS data_dir on gs:// into a gs:// workdir, killed with SIGKILL and resumed from the
bucket; its export read from and written to gs://; GRPO with policy and judge loaded from gs://
Hugging Face directories; two jax.distributed processes writing one set of checkpoints. Nothing is
written locally besides the cache (`VISUAL_ERM_CACHE`) and the processes' temporary files."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import render
from policy import paths, tiny_checkpoint
from tests.gcs_emulator import bucket_files
from tests.kill_restart import straight_and_resumed
from tests.multihost import _free_port
from tests.tb_events import summary_values

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SFT_CONFIG = os.path.join(ROOT, "configs", "tiny_erm.py")
GRPO_CONFIG = os.path.join(ROOT, "configs", "tiny_grpo_svg.py")
SHAPES_JUDGE = os.path.join(ROOT, "visual_erm", "checkpoints", "tiny_shapes_judge")


@pytest.fixture(scope="module")
def tfds_on_gcs(gcs_bucket, tmp_path_factory):
    """`visual_erm_reward/tiny` built locally, then uploaded to gs://BUCKET/tfds (the local build removed)."""
    from visual_erm.datasets import reward as reward_builder

    local = str(tmp_path_factory.mktemp("tfds_build"))
    reward_builder.main(["--data_dir", local, "--config", "tiny", "--workers", "1"])
    url = paths.join(gcs_bucket, "tfds")
    paths.copy_tree(os.path.join(local, "visual_erm_reward"), paths.join(url, "visual_erm_reward"))
    return url


@pytest.fixture(scope="module")
def reward_data_on_gcs(gcs_bucket, tmp_path_factory):
    """Hand-made reward pairs (tests/visual_erm/test_train.py's, no rendering) as make_data folders in the bucket."""
    from tests.visual_erm.test_train import examples
    from visual_erm import records

    url = paths.join(gcs_bucket, "reward")
    for split, n, offset in (("train", 24, 0), ("eval", 16, 1000)):
        local = tmp_path_factory.mktemp(split)
        records.write_shard(str(local / records.SHARD_PATTERN.format(0)), examples(n, offset))
        paths.copy_tree(str(local), paths.join(url, split))
    return url


@pytest.fixture
def empty_cwd(tmp_path):
    """The runs' working directory: it must stay empty (no ./gs: folder, no local workdir)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    yield cwd
    assert sorted(os.listdir(cwd)) == []


def sft_flags(train, evaluation, *extra):
    return [f"--config={SFT_CONFIG}", f"--config.data.train_dir={train}", f"--config.data.eval_dir={evaluation}",
            "--config.total_steps=6", "--config.checkpoint_every=2", "--config.eval.every=3",
            "--config.eval.critiques=0", "--config.eval.batches=1", "--config.batch_size=4", *extra]


def small_model(*extra):
    """The hand-made pairs' sizes (as tests/visual_erm/test_train.py runs them)."""
    return ["--config.model.vocab_size=300", "--config.seq_buckets=(512,1024)",
            "--config.patch_buckets=(1152,)", *extra]


def test_paths_round_trip_through_the_bucket(gcs_bucket, tmp_path):
    folder = paths.join(gcs_bucket, "roundtrip")
    assert paths.resolve(folder + "/") == folder and not paths.exists(folder)
    paths.write_text(paths.join(folder, "sub", "a.txt"), "alpha")
    paths.write_bytes(paths.join(folder, "b.bin"), b"\x00\x01")
    assert paths.listdir(folder) == ["b.bin", "sub"] and paths.isdir(paths.join(folder, "sub"))
    assert paths.list_files(folder) == ["b.bin", "sub/a.txt"]
    local = paths.local_copy(folder)
    assert local.startswith(paths.cache_root()) and open(os.path.join(local, "sub", "a.txt")).read() == "alpha"
    assert paths.local_copy(folder) == local  # copied once
    with paths.built_folder(paths.join(gcs_bucket, "built"), last="config.json") as staging:
        open(os.path.join(staging, "config.json"), "w").write("{}")
        open(os.path.join(staging, "weights"), "w").write("w")
    assert bucket_files(paths.join(gcs_bucket, "built")) == ["config.json", "weights"]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        paths.local_copy(paths.join(gcs_bucket, "missing"))


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sft_in_a_bucket_resumes_after_kill_9_and_exports_to_and_from_gs(gcs_bucket, reward_data_on_gcs, empty_cwd,
                                                                          tmp_path):
    """Reward data (make_data folders) read from gs://, the tiny base model built into the gs:// workdir."""
    base = paths.join(gcs_bucket, "sft")
    data = [paths.join(reward_data_on_gcs, split) for split in ("train", "eval")]
    expected, got = straight_and_resumed(ROOT, base, sft_flags(*data, *small_model("--config.mesh_shape=(1,1,1)")),
                                         kill_after_records=5, cwd=empty_cwd)
    assert [r["step"] for r in expected] == [r["step"] for r in got] == list(range(1, 7))
    for a, b in zip(got, expected):
        for key in ("loss", "grad_norm", "eval_loss"):
            if key in b:
                assert a[key] == pytest.approx(b[key], rel=1e-6), (a["step"], key)
    run = paths.join(base, "killed")
    files = bucket_files(run)
    for name in ("run_config.json", "metrics.jsonl", "loss.png", "base_model/config.json",
                 "checkpoints/6/_CHECKPOINT_METADATA"):
        assert name in files, (name, files)
    assert any(name.startswith("tb/events.out.tfevents") for name in files)
    assert json.loads(paths.read_text(paths.join(run, "run_config.json")))["total_steps"] == 6

    from launch import export_hf

    exported = paths.join(gcs_bucket, "export", "sft")
    result = export_hf.main([f"--checkpoint={run}", f"--out={exported}"])
    assert result["step"] == 6 and result["out"] == exported
    local = export_hf.main([f"--checkpoint={run}", f"--out={tmp_path / 'local_export'}"])
    assert local["step"] == 6
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert paths.read_bytes(paths.join(exported, name)) == (tmp_path / "local_export" / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sft_reads_a_tfds_data_dir_in_the_bucket(tfds_on_gcs, empty_cwd, gcs_bucket):
    """`tfds:NAME:SPLIT@gs://...`: the dataset folder is copied once into the cache and read from there."""
    data = [f"tfds:visual_erm_reward/tiny:{split}@{tfds_on_gcs}" for split in ("train", "validation")]
    run = paths.join(gcs_bucket, "sft_tfds")
    flags = sft_flags(*data, "--config.total_steps=2", "--config.checkpoint_every=2", "--config.eval.every=2",
                      "--config.mesh_shape=(1,1,1)")
    done = subprocess.run([sys.executable, "-m", "launch.main", f"--workdir={run}", *flags], cwd=empty_cwd,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    from policy.metric_writers import read_jsonl

    assert [r["step"] for r in read_jsonl(paths.join(run, "metrics.jsonl"))] == [1, 2]
    assert os.path.isdir(os.path.join(paths.cache_path(tfds_on_gcs), "visual_erm_reward", "tiny"))


@pytest.fixture(scope="module")
def policy_on_gcs(gcs_bucket, tmp_path_factory):
    """The tiny test policy (as tests/rl/test_trainer.py builds it) and the shipped shapes judge, in the bucket."""
    from rl.models import prepare_policy
    from tests.rl.test_trainer import tiny_config

    with render.RenderPool(workers=2) as pool:
        local = prepare_policy(tiny_config(), str(tmp_path_factory.mktemp("grpo_policy")), pool)
    models = paths.join(gcs_bucket, "models")
    paths.copy_tree(local, paths.join(models, "policy"), last="config.json")
    paths.copy_tree(SHAPES_JUDGE, paths.join(models, "judge"), last="config.json")
    return paths.join(models, "policy"), paths.join(models, "judge")


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_grpo_in_a_bucket_with_models_from_gs_resumes_after_kill_9(gcs_bucket, policy_on_gcs, empty_cwd,
                                                                   monkeypatch):
    """Also what the run records: TensorBoard in the bucket holds the held-out metrics (start and end),
    the learning rate and the sample table; the W&B writer (offline) keeps its run in the cache."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    policy, judge = policy_on_gcs
    base = paths.join(gcs_bucket, "grpo")
    flags = [f"--config={GRPO_CONFIG}", f"--config.model.checkpoint={policy}", f"--config.judge.checkpoint={judge}",
             "--config.total_steps=4", "--config.checkpoint_every=2", "--config.warmstart.steps=60",
             "--config.prompts_per_step=4", "--config.group_size=4", "--config.heldout.n=2",
             "--config.heldout.min_image_dependence=0",  # a 60-step warm start; the gate has its own tests
             "--config.mesh_shape=(1,1,1)", "--config.writers=tensorboard,jsonl,wandb",
             # After the warm start the tiny judge gives all of a group's drawings one critique at temperature 1
             # (reward_std 0 in every step); at 1.5 some drawings break, so groups differ (reward_std ~0.8).
             "--config.sampling.temperature=1.5"]
    expected, got = straight_and_resumed(ROOT, base, flags, kill_after_records=3, cwd=empty_cwd)
    assert [r["step"] for r in got] == list(range(1, 5))
    assert all(r["critique_parse_rate"] > 0 for r in got)  # the judge from gs:// answers
    assert max(r["valid_groups"] for r in expected) > 0  # real updates happen, so resuming is not trivial
    for a, b in zip(got, expected):
        for key in b:
            if not key.startswith("time/"):
                assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), (a["step"], key)
    assert "heldout/ssim/start" in got[0] and "heldout/ssim" in got[-1] and "learning_rate" in got[-1]
    run = paths.join(base, "killed")
    files = bucket_files(run)
    for name in ("run_config.json", "metrics.jsonl", "reward.png", "heldout.png", "checkpoints/4/_CHECKPOINT_METADATA",
                 "warmstart/metrics.jsonl"):
        assert name in files, (name, files)
    values = {(tag, kind) for _, tag, kind in summary_values(paths.join(run, "tb"))}
    assert {("heldout/ssim", "scalar"), ("heldout/ssim/start", "scalar"), ("learning_rate", "scalar"),
            ("heldout_samples/0", "image"), ("heldout_samples/text_summary", "text")} <= values, values
    assert glob.glob(os.path.join(paths.cache_path(run), "wandb", "offline-run-*", "*.wandb"))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_processes_write_one_set_of_checkpoints_to_the_bucket(gcs_bucket, reward_data_on_gcs, empty_cwd,
                                                                  tmp_path):
    from tests.visual_erm.test_train import CRITIQUES
    from visual_erm.prompts import judge_prompt

    base_model = paths.join(gcs_bucket, "models", "sft_base")
    local_base = str(tmp_path / "base")
    tiny_checkpoint.build(local_base, [judge_prompt(k) for k in ("chart", "table", "svg")] * 5 + CRITIQUES * 5,
                          vocab_size=300, max_pixels=32 * 32)
    paths.copy_tree(local_base, base_model, last="config.json")
    run = paths.join(gcs_bucket, "two_processes")
    port = str(_free_port())
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    data = [paths.join(reward_data_on_gcs, split) for split in ("train", "eval")]
    flags = sft_flags(*data, *small_model(f"--config.model.checkpoint={base_model}", "--config.mesh_shape=(2,4,1)",
                                          "--config.batch_size=8"))
    workers = [subprocess.Popen([sys.executable, "-m", "launch.main", f"--workdir={run}", "--multihost",
                                 f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={p}",
                                 *flags], cwd=empty_cwd, env=dict(env, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    try:
        for worker in workers:
            _, err = worker.communicate(timeout=1500)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    files = bucket_files(run)
    assert sorted({f.split("/")[1] for f in files if f.startswith("checkpoints/")}) == ["2", "4", "6"], files
    assert sorted(f for f in files if "/" not in f) == ["loss.png", "metrics.jsonl", "run_config.json"]
    from policy.metric_writers import read_jsonl

    records = read_jsonl(paths.join(run, "metrics.jsonl"))
    assert [r["step"] for r in records] == list(range(1, 7)) and np.isfinite(records[-1]["eval_loss"])
