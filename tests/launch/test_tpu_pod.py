"""launch/tpu_pod.sh --dry-run prints what runs here and on every host, and calls nothing."""
import os
import stat
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dry_run(tmp_path, *args):
    """The script's output with a `gcloud` on PATH that records any call (a dry run makes none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "gcloud"
    fake.write_text(f"#!/bin/sh\necho called >> {tmp_path / 'gcloud_called'}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", os.path.join(ROOT, "launch", "tpu_pod.sh"), "--dry-run", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert not (tmp_path / "gcloud_called").exists()
    return done


def test_dry_run_prints_copy_install_and_the_command_of_every_host(tmp_path):
    done = dry_run(tmp_path, "--workers=3", "my-tpu", "us-east5-a", "configs/qwen3vl_8b_grpo.py:chart",
                   "gs://bucket/grpo", "--config.model.checkpoint=gs://bucket/Qwen3-VL-8B", "--config.total_steps=5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("here: (cd ") and "git ls-files -z | tar czf /tmp/visual-erm-jax.tar.gz" in lines[0]
    assert lines[1] == ("here: gcloud compute tpus tpu-vm scp /tmp/visual-erm-jax.tar.gz my-tpu:~/ "
                        "--zone=us-east5-a --worker=all")
    for host in range(3):
        setup, train = (line for line in lines if line.startswith(f"host {host}: "))
        assert "tar xzf ~/visual-erm-jax.tar.gz" in setup and "pip install -q -e '.[tpu]'" in setup
        assert ("python3 -m launch.main --multihost --config=configs/qwen3vl_8b_grpo.py:chart "
                "--workdir=gs://bucket/grpo --config.model.checkpoint=gs://bucket/Qwen3-VL-8B "
                "--config.total_steps=5") in train
    assert not any(line.startswith("host 3:") for line in lines)
    assert done.stderr == ""  # a gs:// workdir: no warning


def test_dry_run_with_git_setup_and_a_local_workdir(tmp_path):
    done = dry_run(tmp_path, "--setup=git", "--repo=https://example.com/visual-erm-jax.git", "--ref=abc123",
                   "--workers=1", "t", "z", "configs/qwen3vl_8b_erm.py", "runs/erm")
    assert done.returncode == 0, done.stderr
    assert "git clone https://example.com/visual-erm-jax.git ~/visual-erm-jax" in done.stdout
    assert "git checkout -q abc123" in done.stdout and "scp" not in done.stdout
    assert "is not gs://" in done.stderr


def test_bad_setup_and_missing_arguments_exit_2(tmp_path):
    assert dry_run(tmp_path, "--setup=rsync", "t", "z", "c", "gs://b/w").returncode == 2
    assert dry_run(tmp_path, "t", "z").returncode == 2
