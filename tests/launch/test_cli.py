"""The rough edges of the command lines (issue 27), each refused or fixed before any work starts.

| command | before | after |
| --- | --- | --- |
| `visual_erm.bench --judge=foo` | bare KeyError after building the set | exit 2: "unknown judge 'foo'; allowed: ..." |
| `visual_erm.bench --n=3` with 6 cached | scored all 6 | scores the first 3 |
| `visual_erm.bench` caches | ./vc_rewardbench_synthetic in the cwd | under `$VISUAL_ERM_CACHE` |
| `launch.gallery --out=X` | failed after rendering | exit 2 before rendering, naming allowed extensions |
| `visual_erm.datasets.bench` | did nothing | writes the dataset, prints its location |
| truncated ArrayRecord shard | Riegeli RuntimeError, no file named | RecordError naming the shard |
"""
import json
import os

import pytest
from PIL import Image

import render
from launch import gallery
from policy import cli
from visual_erm import bench, records
from visual_erm.bench import cli as bench_cli
from visual_erm.bench import synth
from visual_erm.datasets import bench as bench_datasets


def item(i: int) -> dict:
    return {"id": f"it{i}", "idx": i, "category": "svg", "gt_img_path": f"images/gt{i}.png",
            "pred_img_path": f"images/pred{i}.png",
            "human_errors": [{"type": "shape_error", "severity": 2, "location": "circle",
                              "description": "the circle is a square"}]}


def write_copy(root, n: int, file: str = "items.jsonl") -> None:
    """A VC-RewardBench copy in the published layout with `n` items and their images."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (16, 12), (255, 8 * i, 0)).save(root / "images" / f"gt{i}.png")
        Image.new("RGB", (16, 12), (0, 8 * i, 255)).save(root / "images" / f"pred{i}.png")
    (root / file).write_text("".join(json.dumps(item(i)) + "\n" for i in range(n)))


@pytest.fixture
def no_render(monkeypatch):
    """Any render pool started by the command under test fails the test: checks come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a render pool was started before the command line was checked")

    monkeypatch.setattr(render, "RenderPool", refuse)


def test_bench_refuses_bad_values_before_work(no_render, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(cli.CACHE_ENV, str(tmp_path / "cache"))
    allowed = "unknown judge 'foo'; allowed: none, random, constant, oracle, visual_erm"
    with pytest.raises(SystemExit, match=allowed) as e:
        bench_cli.main(["--judge=oracle,foo"])
    assert e.value.code == 2 and "unknown judge 'foo'" in capsys.readouterr().err
    for argv, message in ((["--n=0"], "--n=0: 0 is not a positive integer"),
                          (["--judge=visual_erm"], "needs --checkpoint=DIR"),
                          (["--data=/nowhere"], "--data=/nowhere: no such file or folder"),
                          (["--mode=fast"], "--mode=fast: value should be one of"),
                          (["extra"], r"unexpected arguments \['extra'\]")):
        with pytest.raises(SystemExit, match=message):
            bench_cli.main(argv)
    assert not os.path.exists(tmp_path / "cache" / "vc_rewardbench_synthetic" / synth.ITEMS_FILE)


def test_bench_scores_the_first_n_of_a_cached_set_kept_in_the_cache_dir(no_render, tmp_path, monkeypatch):
    cache, cwd = tmp_path / "cache", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv(cli.CACHE_ENV, str(cache))
    write_copy(cache / "vc_rewardbench_synthetic", 6, synth.ITEMS_FILE)  # a set built earlier
    results = bench_cli.main(["--judge=oracle,none", "--n=3"])
    assert results["oracle"]["n_items"] == results["none"]["n_items"] == 3
    assert results["oracle"]["overall"]["soft"]["f1"] == 1.0
    assert bench_cli.main(["--judge=oracle", "--n=6"])["oracle"]["n_items"] == 6
    assert os.listdir(cwd) == []  # nothing written where the command ran


def test_gallery_refuses_an_out_without_an_image_extension(no_render, tmp_path):
    for out, message in ((tmp_path / "X", "no extension to name a format; allowed: .*\\.png"),
                         (tmp_path / "X.pdfx", "extension '.pdfx' names no image format"),
                         (tmp_path / "missing" / "X.png", "folder .*missing does not exist")):
        with pytest.raises(SystemExit, match=message):
            gallery.main([f"--out={out}"])
    assert gallery.image_format("a/b.JPG") == "JPEG"


def test_datasets_bench_command_writes_the_dataset(tmp_path, capsys):
    copy, data_dir = tmp_path / "copy", str(tmp_path / "tfds")
    write_copy(copy, 3)
    with pytest.raises(SystemExit, match="--data_dir"):
        bench_datasets.main([])
    with pytest.raises(SystemExit, match="--manual_dir=.*nope: no such folder"):
        bench_datasets.main([f"--data_dir={data_dir}", f"--manual_dir={tmp_path / 'nope'}"])
    location = bench_datasets.main([f"--data_dir={data_dir}", f"--manual_dir={copy}"])
    assert location == f"tfds:vc_rewardbench:test@{data_dir}"
    assert f"--data={location}" in capsys.readouterr().out
    loaded = bench.load_bench(location)
    assert sorted(i.id for i in loaded.items) == ["it0", "it1", "it2"] and loaded.errors == []


def test_truncated_array_record_shard_is_named(tmp_path):
    examples = [records.RewardExample(id=str(i), kind="svg", source="test", seed=i, reference_png=b"r" * 500,
                                      candidate_png=b"c" * 500, reference_code="<svg/>", candidate_code="<svg/>",
                                      critique='{"errors": []}') for i in range(8)]
    for shard in range(2):
        records.write_shard(str(tmp_path / records.SHARD_PATTERN.format(shard)), examples[4 * shard:4 * shard + 4])
    source = records.FolderSource(str(tmp_path))
    assert [source[i].id for i in range(len(source))] == [str(i) for i in range(8)]
    broken = tmp_path / records.SHARD_PATTERN.format(1)
    os.truncate(broken, os.path.getsize(broken) // 2)
    with pytest.raises(records.RecordError, match=f"{broken}: not a readable ArrayRecord shard, truncated or corrupt"):
        records.FolderSource(str(tmp_path))
