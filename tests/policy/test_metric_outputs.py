"""What MetricWriter leaves behind: JSONL, TensorBoard scalars, images and text, and a W&B run (offline)."""
import glob
import os

from PIL import Image

from policy.metric_writers import MetricWriter, read_jsonl
from tests.tb_events import summary_values


def test_tensorboard_jsonl_and_wandb_offline_hold_scalars_images_and_text(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    writer = MetricWriter(str(tmp_path), writers="tensorboard,jsonl,wandb", run_config={"lr": 0.1})
    for step in (1, 2):
        writer.write(step, {"loss": 1.0 / step, "learning_rate": 0.1})
    writer.images(2, {"samples/0": Image.new("RGB", (8, 6), "red")})
    writer.texts(2, {"samples": "| a | b |\n|---|---|\n| 1 | 2 |"})
    writer.close()
    assert [r["step"] for r in read_jsonl(str(tmp_path / "metrics.jsonl"))] == [1, 2]
    values = set(summary_values(str(tmp_path / "tb")))
    assert {(1, "loss", "scalar"), (2, "learning_rate", "scalar"), (2, "samples/0", "image"),
            (2, "samples/text_summary", "text")} <= values
    runs = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    assert len(runs) == 1 and glob.glob(os.path.join(runs[0], "*.wandb"))


def test_unknown_writer_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="mlflow"):
        MetricWriter(str(tmp_path), writers="jsonl,mlflow")
