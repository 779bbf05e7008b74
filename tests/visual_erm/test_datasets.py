"""TFDS datasets: built without TensorFlow, read back without importing it, the same data as the
make_data folders and the published benchmark files, and usable wherever those are."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from visual_erm import bench, records, tfds_source
from visual_erm.bench import cli as bench_cli
from visual_erm.datasets import bench as bench_builders
from visual_erm.datasets import reward as reward_builder
from visual_erm.datasets.reward import SPLIT_SEEDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLITS = {"train": 24, "validation": 6, "test": 6}  # the builder's "tiny" config

# Runs in a fresh process whose `import tensorflow` raises: reading must never reach it.
READER = """
import hashlib, json, sys
import tensorflow_datasets as tfds
from visual_erm import records
data_dir = sys.argv[1]
sha = lambda data: hashlib.sha256(bytes(data)).hexdigest()
out = {}
for split in ("train", "validation", "test"):
    skip = {"reference": tfds.decode.SkipDecoding(), "candidate": tfds.decode.SkipDecoding()}
    direct = tfds.data_source("visual_erm_reward/tiny", split=split, data_dir=data_dir, decoders=skip)
    ours = list(records.read_examples(f"tfds:visual_erm_reward/tiny:{split}@{data_dir}"))
    assert [direct[i]["id"].decode() for i in range(len(direct))] == [e.id for e in ours]
    assert [sha(direct[i]["reference"]) for i in range(len(direct))] == [sha(e.reference_png) for e in ours]
    out[split] = [[e.id, e.kind, e.source, e.seed, sha(e.reference_png), sha(e.candidate_png), e.reference_code,
                   e.candidate_code, e.critique, list(e.edits)] for e in ours]
print(json.dumps({"examples": out, "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")}))
"""


def fingerprint(example: records.RewardExample) -> list:
    def sha(data):
        return hashlib.sha256(data).hexdigest()

    return [example.id, example.kind, example.source, example.seed, sha(example.reference_png),
            sha(example.candidate_png), example.reference_code, example.candidate_code, example.critique,
            list(example.edits)]


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory):
    """`visual_erm_reward/tiny` (36 rendered pairs) built by the builder's command line."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    reward_builder.main(["--data_dir", data_dir, "--config", "tiny", "--workers", "2"])
    return data_dir


def staged(data_dir: str, split: str) -> str:
    """The make_data folder the builder generated the split into."""
    return os.path.join(data_dir, "downloads", "visual_erm_reward", "tiny", split)


@pytest.mark.slow
def test_reward_pairs_read_back_without_tensorflow_as_generated(reward_dir, tmp_path):
    sentinel = tmp_path / "sentinel" / "tensorflow"
    sentinel.mkdir(parents=True)
    (sentinel / "__init__.py").write_text("raise ImportError('reading a TFDS dataset imported tensorflow')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(sentinel.parent), ROOT]))
    done = subprocess.run([sys.executable, "-c", READER, reward_dir], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tensorflow"] == []
    for split, n in SPLITS.items():
        generated = [fingerprint(e) for e in records.read_examples(staged(reward_dir, split))]
        assert len(generated) == n
        assert sorted(result["examples"][split]) == sorted(generated), split
    seeds = {split: [row[3] for row in rows] for split, rows in result["examples"].items()}
    assert all(seed < SPLIT_SEEDS["test"] for seed in seeds["train"])  # held-out generator seeds
    assert all(SPLIT_SEEDS["test"] <= seed < SPLIT_SEEDS["validation"] for seed in seeds["test"])
    assert all(SPLIT_SEEDS["validation"] <= seed for seed in seeds["validation"])


@pytest.mark.slow
def test_reward_dataset_declares_version_features_and_provenance(reward_dir):
    builder = tfds.builder("visual_erm_reward/tiny", data_dir=reward_dir)
    assert str(builder.info.version) == "1.0.0"
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == SPLITS
    assert isinstance(builder.info.features["reference"], tfds.features.Image)
    assert isinstance(builder.info.features["edits"], tfds.features.Sequence)
    with open(os.path.join(builder.data_dir, "dataset_info.json")) as f:
        info = json.load(f)
    assert info["fileFormat"] == "array_record"
    assert "arXiv:2603.13224" in info["citation"]
    assert "pixel-checked" in info["description"]
    assert sorted(os.listdir(builder.data_dir)) == sorted(
        ["dataset_info.json", "features.json"] + [f"visual_erm_reward-{s}.array_record-00000-of-00001" for s in SPLITS])


@pytest.mark.slow
def test_sft_trains_from_a_tfds_split_on_the_batches_of_a_folder_of_the_same_records(reward_dir, tmp_path):
    """SFT runs from TFDS locations (tiny base model built from the data, held-out loss), and its input
    pipeline yields exactly the batches it yields from make_data folders holding the same records."""
    from configs import tiny_erm
    from policy import Qwen3VLConfig
    from policy.processor import Processor
    from visual_erm import data as data_lib
    from visual_erm import train

    where = {split: f"tfds:visual_erm_reward/tiny:{split}@{reward_dir}" for split in ("train", "validation")}
    config = tiny_erm.get_config()
    config.data.train_dir, config.data.eval_dir = where["train"], where["validation"]
    config.total_steps, config.checkpoint_every, config.batch_size, config.mesh_shape = 2, 2, 4, (1, 1, 1)
    config.eval.every, config.eval.batches, config.eval.critiques = 2, 1, 0
    record = train.train(config, str(tmp_path / "run"))
    assert record["step"] == 2 and np.isfinite(record["loss"]) and np.isfinite(record["eval_loss"])

    base = str(tmp_path / "run" / "base_model")
    model_config = Qwen3VLConfig.from_hf(base)
    processor = Processor.from_pretrained(base, max_side=config.max_side)
    folder = str(tmp_path / "folder")
    os.makedirs(folder)
    same_records = list(records.read_examples(where["train"]))
    records.write_shard(os.path.join(folder, records.SHARD_PATTERN.format(0)), same_records)

    def batches(location):
        return list(data_lib.make_dataset(location, processor, model_config, batch_size=4, seed=3, num_epochs=1,
                                          seq_buckets=tuple(config.seq_buckets),
                                          patch_buckets=tuple(config.patch_buckets)))

    from_tfds, from_folder = batches(where["train"]), batches(folder)
    assert len(from_tfds) == SPLITS["train"] // 4
    for ours, theirs in zip(from_tfds, from_folder):
        for key in ("input_ids", "target_mask", "pixel_values", "positions"):
            np.testing.assert_array_equal(ours[key], theirs[key])


def published_copy(root):
    """A VC-RewardBench copy in the published layout: two files, a table item without severities, a
    cached judge output, one item without human_errors and one whose image is missing."""
    (root / "images").mkdir(parents=True)
    for name, color in (("gt0", (255, 0, 0)), ("pred0", (0, 255, 0)), ("gt1", (0, 0, 255)), ("pred1", (9, 9, 9))):
        Image.new("RGB", (20, 14), color).save(root / "images" / f"{name}.png")
    chart = {"id": "c0", "idx": 0, "category": "chart", "gt_img_path": "images/gt0.png",
             "pred_img_path": "images/pred0.png", "pred_json": {"errors": []},
             "human_errors": [{"type": "text_error", "severity": 2, "location": "title",
                               "description": "the title says Sales, not Revenue"}]}
    table = {"id": "t1", "idx": 1, "category": "table", "gt_img_path": "images/gt1.png",
             "pred_img_path": "images/pred1.png", "human_errors": [{"type": "text_error", "description": "cell"}]}
    unlabelled = {"id": "u2", "idx": 2, "category": "svg", "gt_img_path": "images/gt0.png",
                  "pred_img_path": "images/pred0.png"}
    no_image = dict(chart, id="m3", idx=3, pred_img_path="images/missing.png")
    (root / "chart.json").write_text(json.dumps([chart, unlabelled]))
    (root / "more.jsonl").write_text("\n".join(json.dumps(item) for item in (table, no_image)) + "\n")


def comparable(item: bench.BenchItem) -> tuple:
    return item.id, item.kind, item.reference, item.severity_known, item.idx, dict(item.judge_outputs)


def test_bench_copy_built_with_manual_dir_reads_as_the_files(tmp_path):
    copy, data_dir = tmp_path / "copy", str(tmp_path / "tfds")
    published_copy(copy)
    bench_builders.VcRewardbench(data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(copy)))
    where = f"tfds:vc_rewardbench:test@{data_dir}"
    from_files = bench.load_bench(copy, require_images=True)
    from_tfds = bench.load_bench(where)
    assert sorted(map(comparable, from_tfds.items)) == sorted(map(comparable, from_files.items))
    assert {item.id for item in from_tfds.items} == {"c0", "t1"} and from_tfds.errors == []
    by_id = {item.id: item for item in from_files.items}
    for item in from_tfds.items:
        assert item.reference_png == Path(by_id[item.id].gt_img_path).read_bytes()
        for ours, theirs in zip(item.images(), by_id[item.id].images()):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    # The CLI scores a TFDS split as the items of the files that have their images (the rest are not in it).
    expected = {"oracle": bench.evaluate_items(from_files.items, bench_cli.judge_oracle(from_files.items)),
                "pred_json": bench.evaluate_items(from_files.items, "pred_json")}
    for judge, result in expected.items():
        assert bench_cli.score(judge, where)["overall"] == result["overall"]
    assert bench_cli.score("oracle", where)["overall"]["soft"]["f1"] == 1.0


@pytest.mark.slow
def test_synthetic_bench_builder_holds_the_items_of_the_synthetic_set(tmp_path):
    data_dir = str(tmp_path / "tfds")
    builder = bench_builders.VcRewardbenchSynthetic(config=bench_builders.SyntheticConfig(name="three", n=3),
                                                     data_dir=data_dir, render_workers=1)
    builder.download_and_prepare()
    staged_items = os.path.join(data_dir, "downloads", "vc_rewardbench_synthetic", "three")
    from_files = bench.load_bench(staged_items, require_images=True)
    from_tfds = bench.load_bench(f"tfds:vc_rewardbench_synthetic/three:test@{data_dir}")
    assert len(from_tfds.items) == 3
    assert sorted(map(comparable, from_tfds.items)) == sorted(map(comparable, from_files.items))
    where = f"tfds:vc_rewardbench_synthetic/three:test@{data_dir}"
    assert bench_cli.score("oracle", where)["overall"]["hard"]["f1"] == 1.0


def test_location_strings_name_a_split_or_fail_clearly(tmp_path):
    parsed = tfds_source.parse("tfds:visual_erm_reward/small:1.0.0:train[:10%]@/data/tfds")
    assert parsed == tfds_source.TfdsLocation("visual_erm_reward/small:1.0.0", "train[:10%]", "/data/tfds")
    assert str(parsed) == "tfds:visual_erm_reward/small:1.0.0:train[:10%]@/data/tfds"
    assert tfds_source.parse("tfds:vc_rewardbench:test").data_dir is None
    with pytest.raises(tfds_source.LocationError, match="expected tfds:NAME"):
        tfds_source.parse("tfds:visual_erm_reward")
    with pytest.raises(FileNotFoundError, match="no prepared TFDS dataset"):
        records.reward_source(f"tfds:visual_erm_reward/tiny:train@{tmp_path}")
    with pytest.raises(records.RecordError, match="no reward"):
        records.reward_source(str(tmp_path))


def test_a_benchmark_row_whose_record_is_not_json_is_a_typed_error(monkeypatch):
    """A damaged `record` in a vc_rewardbench split is skipped with its error (raised when strict), as an
    unreadable line of a published file is; it never escapes as a bare JSONDecodeError."""
    rows = [{"record": b'{"id": "a", ', "source": b"items.jsonl:7", "reference": b"", "candidate": b""}]
    monkeypatch.setattr(tfds_source, "data_source", lambda where: rows)
    where = "tfds:vc_rewardbench:test@/nowhere"
    loaded = bench.load_bench(where)
    assert loaded.items == [] and len(loaded.errors) == 1
    assert "invalid JSON record" in str(loaded.errors[0]) and "items.jsonl:7" in str(loaded.errors[0])
    with pytest.raises(bench.BenchItemError, match="invalid JSON record"):
        bench.load_bench(where, strict=True)
