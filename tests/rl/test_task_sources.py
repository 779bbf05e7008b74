"""RL task sources, the published-layout loaders (on fixture samples) and the grain pipeline."""
import json
import pathlib
import shutil

import grain
import ml_collections
import numpy as np
import pytest
from PIL import Image

import render
from render import RenderResult
from rl.datasets import load_chartmimic, load_plot2code, load_pubtabnet, load_starvector, pubtabnet_html
from rl.task_mix import make_task_dataset
from rl.task_sources import (
    BadImageError,
    BadRecordError,
    IconFolderSource,
    LoadReport,
    MissingFieldError,
    MissingFileError,
    RenderFailedError,
    RLTask,
    SyntheticSource,
)
from visual_erm.prompts import policy_prompt
from visual_erm.tasks import generate
from visual_erm.tasks.svg import ICON_DIR

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
SMALL_READS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=2)


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=1, timeout_s=30) as p:
        yield p


def fake_renderer(kind, code, size):
    """Instant and deterministic: a flat colour from the code; "table" references fail."""
    if kind == "table":
        return RenderResult.failure("runtime", "fake table failure")
    shade = sum(code.encode()) % 256
    return RenderResult(image=Image.new("RGB", size or (8, 8), (shade, 255 - shade, 7)))


def copy_fixture(name, tmp_path) -> pathlib.Path:
    return pathlib.Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def ids(tasks):
    return [t.id for t in tasks]


# ---------------------------------------------------------------- synthetic and icons


def test_synthetic_tasks_render_the_generated_code_deterministically(pool):
    source = SyntheticSource(("chart", "table", "svg"), start=3, stop=5, renderer=pool)
    tasks = list(source)
    assert ids(tasks) == [f"synthetic/{k}/{s}" for s in (3, 4) for k in ("chart", "table", "svg")]
    for task in tasks:
        seed = int(task.id.rsplit("/", 1)[1])
        assert isinstance(task, RLTask) and task.source == "synthetic"
        assert task.reference_code == task.code == generate(task.kind, seed).code
        assert task.prompt == policy_prompt(task.kind)
        assert task.reference_image.mode == "RGB" and min(task.reference_image.size) > 16
    again = SyntheticSource(("chart", "table", "svg"), start=3, stop=5, renderer=pool)
    for i in (0, 4):
        np.testing.assert_array_equal(np.asarray(again[i].reference_image), np.asarray(tasks[i].reference_image))
    assert len(source.report) == 0


def test_synthetic_skips_and_counts_references_that_do_not_render():
    report = LoadReport()
    source = SyntheticSource(("chart", "table"), start=0, stop=3, renderer=fake_renderer, report=report)
    tasks = list(source)
    assert [t.kind for t in tasks] == ["chart"] * 3
    assert source[1] is None  # index 1 is table seed 0
    assert report.counts == {"RenderFailedError": 4}  # three from the listing, one from source[1]
    assert "synthetic/table/0" in str(report.errors[0]) and "fake table failure" in str(report.errors[0])
    with pytest.raises(RenderFailedError):
        SyntheticSource(("table",), start=0, stop=1, renderer=fake_renderer, strict=True)[0]
    with pytest.raises(ValueError, match="renderer"):
        SyntheticSource(("svg",), start=0, stop=1)[0]
    with pytest.raises(ValueError, match="kinds"):
        SyntheticSource(("plot",))


def test_icon_folder_renders_each_svg_at_the_fixed_size(pool, tmp_path):
    source = IconFolderSource(ICON_DIR, size=(64, 48), renderer=pool)
    assert len(source) == len(list(ICON_DIR.glob("*.svg")))
    task = source[0]
    assert task.id == "icons/bootstrap/alarm.svg" and task.kind == "svg" and task.source == "icons"
    assert task.reference_image.size == (64, 48)
    assert np.asarray(task.reference_image).min() < 128, "the icon drew nothing"
    assert task.reference_code.startswith("<svg") and "<path" in task.reference_code
    raw = IconFolderSource(ICON_DIR, size=(32, 32), renderer=pool, normalize=False)[0]
    assert raw.reference_code == (ICON_DIR / "alarm.svg").read_text()

    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(ICON_DIR / "alarm.svg", folder / "a.svg")
    (folder / "b.svg").write_text("<svg><path d='M0 0'")  # truncated
    (folder / "c.svg").write_bytes(b"\xff\xfe<svg/>")
    broken = IconFolderSource(folder, size=(32, 32), renderer=pool)
    assert ids(broken) == ["icons/mine/a.svg"]
    assert broken.report.counts == {"BadRecordError": 2}
    assert any("b.svg" in str(e) for e in broken.report.errors)
    with pytest.raises(MissingFileError, match="icon folder not found"):
        IconFolderSource(tmp_path / "absent", renderer=pool)


# ---------------------------------------------------------------- ChartMimic


def test_chartmimic_pairs_png_and_py():
    source = load_chartmimic(FIXTURES / "chartmimic")
    tasks = list(source)
    assert ids(tasks) == ["chartmimic/direct_600/bar_1", "chartmimic/direct_600/line_2"]
    bar = tasks[0]
    assert bar.kind == "chart" and bar.source == "chartmimic" and bar.prompt == policy_prompt("chart")
    assert bar.reference_code == (FIXTURES / "chartmimic/direct_600/bar_1.py").read_text()
    assert bar.reference_image.mode == "RGB" and bar.reference_image.size == (60, 40)
    assert np.asarray(bar.reference_image)[0, 0].tolist() == [255, 255, 255]  # alpha composited onto white
    assert ids(load_chartmimic(FIXTURES / "chartmimic" / "direct_600")) == ids(tasks)


def test_chartmimic_reports_missing_and_broken_files(tmp_path):
    root = copy_fixture("chartmimic", tmp_path)
    split = root / "direct_600"
    (split / "line_2.png").unlink()  # only the .pdf is left
    shutil.copy(split / "bar_1.png", split / "orphan_3.png")  # an image without code
    shutil.copy(split / "bar_1.py", split / "pie_4.py")
    (split / "pie_4.png").write_bytes(b"not a png")
    source = load_chartmimic(root)
    assert ids(source) == ["chartmimic/direct_600/bar_1"]
    messages = [str(e) for e in source.report.errors]
    assert source.report.counts == {"MissingFileError": 2, "BadImageError": 1}
    assert any("line_2.py" in m and "line_2.png" in m and "pdftoppm" in m for m in messages)
    assert any("orphan_3.png" in m and "orphan_3.py" in m for m in messages)
    assert any("pie_4.png" in m and "unreadable image" in m for m in messages)
    with pytest.raises(MissingFileError, match="line_2"):
        load_chartmimic(root, strict=True)
    with pytest.raises(MissingFileError, match="direct_1800"):
        load_chartmimic(root, split="direct_1800")


# ---------------------------------------------------------------- Plot2Code


def test_plot2code_reads_imagefolder_metadata():
    tasks = list(load_plot2code(FIXTURES / "plot2code"))
    assert ids(tasks) == ["plot2code/ground_truth_image_0", "plot2code/ground_truth_image_1"]
    rows = [json.loads(line) for line in
            (FIXTURES / "plot2code/data/python_matplotlib/test/metadata.jsonl").read_text().splitlines()]
    assert [t.reference_code for t in tasks] == [r["code"] for r in rows]
    assert all(t.kind == "chart" and t.reference_image.mode == "RGB" for t in tasks)


def test_plot2code_names_the_bad_lines(tmp_path):
    root = copy_fixture("plot2code", tmp_path)
    test = root / "data/python_matplotlib/test"
    shutil.move(test, root / "test")  # the older layout: <repo>/test/metadata.jsonl
    metadata = root / "test" / "metadata.jsonl"
    good = metadata.read_text().splitlines()
    lines = good + ['{"file_name": "ground_truth_image_9.png", "code": "x"}', "{not json",
                    '{"file_name": "ground_truth_image_1.png", "url": "u"}', "[1, 2]"]
    metadata.write_text("\n".join(lines) + "\n")
    source = load_plot2code(root)
    assert len(source) == 2
    messages = [str(e) for e in source.report.errors]
    assert source.report.counts == {"MissingFileError": 1, "BadRecordError": 2, "MissingFieldError": 1}
    assert "(line 3)" in messages[0] and "ground_truth_image_9.png" in messages[0]
    assert "(line 4)" in messages[1] and "bad JSON line" in messages[1]
    assert "(line 5)" in messages[2] and "'code'" in messages[2]
    assert all("metadata.jsonl" in m for m in messages)
    with pytest.raises(MissingFileError):
        load_plot2code(root, strict=True)
    with pytest.raises(MissingFileError, match="metadata.jsonl"):
        load_plot2code(tmp_path)


# ---------------------------------------------------------------- PubTabNet


def test_pubtabnet_rebuilds_html_from_tokens(pool):
    tasks = list(load_pubtabnet(FIXTURES / "pubtabnet"))
    assert ids(tasks) == ["pubtabnet/val/PMC1064074_007_00.png", "pubtabnet/val/PMC1064076_003_00.png"]
    assert tasks[0].reference_code == ("<table><thead><tr><td><b>Gene</b></td><td><b>n</b></td></tr></thead>"
                                       "<tbody><tr><td>A&amp;B</td><td>12</td></tr></tbody></table>")
    assert tasks[1].reference_code == ('<table><thead><tr><td colspan="2">Dose</td></tr></thead>'
                                       "<tbody><tr><td>mg</td><td></td></tr></tbody></table>")
    assert all(t.kind == "table" and t.reference_image.size == (60, 24) for t in tasks)
    train = list(load_pubtabnet(FIXTURES / "pubtabnet", split="train"))
    assert ids(train) == ["pubtabnet/train/PMC1064078_002_01.png"] and "x&lt;3" in train[0].reference_code
    assert len(load_pubtabnet(FIXTURES / "pubtabnet", limit=1)) == 1
    for task in tasks:  # the rebuilt HTML is a table our renderer draws
        assert pool.submit("table", task.reference_code).result().ok


def test_pubtabnet_names_the_bad_records(tmp_path):
    root = copy_fixture("pubtabnet", tmp_path)
    annotation = root / "PubTabNet_2.0.0.jsonl"
    rows = [json.loads(line) for line in annotation.read_text().splitlines()]
    no_html = dict(rows[0], filename="PMC9_1.png")
    del no_html["html"]
    mismatch = json.loads(json.dumps(rows[0]))
    mismatch["html"]["cells"].pop()
    missing_image = dict(rows[1], filename="PMC9_2.png")
    extra = ["{truncated", json.dumps(no_html), json.dumps(mismatch), json.dumps(missing_image),
             json.dumps({"filename": "x.png"})]
    annotation.write_text("\n".join([json.dumps(r) for r in rows] + extra) + "\n")
    source = load_pubtabnet(root)
    assert len(source) == 2
    messages = [str(e) for e in source.report.errors]
    assert [type(e).__name__ for e in source.report.errors] == [
        "BadRecordError", "MissingFieldError", "BadRecordError", "MissingFileError", "MissingFieldError"]
    assert "(line 4)" in messages[0] and "(line 5, PMC9_1.png)" in messages[1] and "'html'" in messages[1]
    assert "4 cells" in messages[2] and "has 3" in messages[2]
    assert "val/PMC9_2.png" in messages[3] and "'split'" in messages[4]
    (root / "val" / "PMC1064076_003_00.png").write_bytes(b"\x89PNG broken")
    source = load_pubtabnet(root)
    assert ids(source) == ["pubtabnet/val/PMC1064074_007_00.png"]
    assert isinstance(source.report.errors[-1], BadImageError)
    with pytest.raises(BadRecordError, match="line 4"):
        load_pubtabnet(root, strict=True)
    with pytest.raises(MissingFieldError):
        pubtabnet_html({"structure": {"tokens": ["<td>"]}})


# ---------------------------------------------------------------- StarVector


def test_starvector_renders_svg_rows(pool):
    pytest.importorskip("pyarrow")
    source = load_starvector(FIXTURES / "starvector", size=(32, 32), renderer=pool, dataset="svg-icons")
    assert len(source) == 3 and len(source.groups) == 2  # row groups of 2 and 1
    tasks = [source[i] for i in (2, 0, 1)]  # out of order: crosses row groups
    assert ids(tasks) == ["starvector/svg-icons/check_04c9", "starvector/svg-icons/circle_7f3a",
                          "starvector/svg-icons/square_b210"]
    circle = tasks[1]
    assert circle.kind == "svg" and "<circle" in circle.reference_code and circle.reference_image.size == (32, 32)
    r, g, b = np.asarray(circle.reference_image)[16, 16]
    assert b > 200 and r < 100, "the blue circle is not in the middle"


def test_starvector_reports_bad_files_and_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = tmp_path / "svg-stack" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"Filename": ["a", "b"], "Svg": ["<svg xmlns='http://www.w3.org/2000/svg'/>", ""]}),
                   data / "val-00000-of-00002.parquet")
    pq.write_table(pa.table({"Filename": ["c"], "Code": ["<svg/>"]}), data / "val-00001-of-00002.parquet")
    source = load_starvector(tmp_path / "svg-stack", split="val", size=(16, 16), renderer=fake_renderer)
    assert len(source) == 2 and ids(source) == ["starvector/svg-stack/a"]
    messages = [str(e) for e in source.report.errors]
    assert isinstance(source.report.errors[0], MissingFieldError) and "val-00001" in messages[0]
    assert "'Svg'" in messages[0] and "empty 'Svg'" in messages[1] and "(row 1)" in messages[1]
    with pytest.raises(MissingFileError, match="'test'"):
        load_starvector(tmp_path / "svg-stack", renderer=fake_renderer)


def test_starvector_reads_figr_svg_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = tmp_path / "FIGR-SVG" / "data"
    data.mkdir(parents=True)
    svg = "<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>"
    pq.write_table(pa.table({"Id": [17, 18], "Svg": [svg, svg], "Caption": ["a star", "a moon"]}),
                   data / "test-00000-of-00001.parquet")
    source = load_starvector(tmp_path / "FIGR-SVG", size=(16, 16), renderer=fake_renderer)
    assert ids(source) == ["starvector/FIGR-SVG/17", "starvector/FIGR-SVG/18"]
    assert source[0].reference_code == svg and not source.report.errors


# ---------------------------------------------------------------- the grain pipeline


def mixed_config(weights=(2.0, 1.0, 1.0, 1.0)):
    return {"sources": [
        {"name": "synthetic", "weight": weights[0], "params": {"kinds": ("chart", "svg"), "start": 0, "stop": 6}},
        {"name": "chartmimic", "weight": weights[1], "params": {"path": str(FIXTURES / "chartmimic")}},
        {"name": "plot2code", "weight": weights[2], "params": {"path": str(FIXTURES / "plot2code")}},
        {"name": "pubtabnet", "weight": weights[3], "params": {"path": str(FIXTURES / "pubtabnet")}},
    ]}


def take(iterator, n):
    return [next(iterator).id for _ in range(n)]


def test_mixed_dataset_is_deterministic_and_resumes():
    ds = make_task_dataset(mixed_config(), seed=7, renderer=fake_renderer)
    assert isinstance(ds, grain.MapDataset)
    first = take(iter(ds.to_iter_dataset(SMALL_READS)), 40)
    again = make_task_dataset(mixed_config(), seed=7, renderer=fake_renderer)
    assert take(iter(again.to_iter_dataset(SMALL_READS)), 40) == first
    other = make_task_dataset(mixed_config(), seed=8, renderer=fake_renderer)
    assert take(iter(other.to_iter_dataset(SMALL_READS)), 40) != first
    assert {i.split("/")[0] for i in first} == {"synthetic", "chartmimic", "plot2code", "pubtabnet"}

    iterator = iter(ds.to_iter_dataset(SMALL_READS))
    take(iterator, 13)
    state = iterator.get_state()
    expected = take(iterator, 10)
    resumed = iter(make_task_dataset(mixed_config(), seed=7, renderer=fake_renderer).to_iter_dataset(SMALL_READS))
    resumed.set_state(state)
    assert take(resumed, 10) == expected


def test_dataset_shards_disjointly_per_process_and_reads_configdicts():
    config = ml_collections.ConfigDict({"name": "synthetic", "params": {"kinds": ("svg", "chart"), "stop": 5}})
    shards = [list(make_task_dataset(config, seed=0, process_index=p, process_count=2, num_epochs=1,
                                     renderer=fake_renderer)) for p in range(2)]
    first, second = (set(ids(s)) for s in shards)
    assert first.isdisjoint(second) and len(first) == 5 and len(second) == 5
    assert first | second == {f"synthetic/{k}/{s}" for k in ("svg", "chart") for s in range(5)}
    ordered = list(make_task_dataset(config, seed=0, shuffle=False, num_epochs=1, renderer=fake_renderer))
    assert ids(ordered)[:3] == ["synthetic/svg/0", "synthetic/chart/0", "synthetic/svg/1"]
    assert len(list(make_task_dataset(config, seed=0, num_epochs=2, renderer=fake_renderer))) == 20


def test_dataset_skips_failures_into_the_report_and_checks_its_config():
    report = LoadReport()
    config = {"sources": [{"name": "synthetic", "params": {"kinds": ("table", "svg"), "stop": 4}}]}
    tasks = list(make_task_dataset(config, seed=1, num_epochs=1, renderer=fake_renderer, report=report))
    assert {t.kind for t in tasks} == {"svg"} and len(tasks) == 4
    assert report.counts == {"RenderFailedError": 4}
    with pytest.raises(ValueError, match="unknown task source"):
        make_task_dataset({"name": "imagenet"}, seed=0)
    with pytest.raises(ValueError, match="weight"):
        make_task_dataset(mixed_config(weights=(1, 0, 1, 1)), seed=0, renderer=fake_renderer)
    with pytest.raises(ValueError, match="no tasks for process 2"):
        make_task_dataset({"name": "chartmimic", "params": {"path": str(FIXTURES / "chartmimic")}},
                          seed=0, process_index=2, process_count=3)


def test_load_report_summary_returns_with_errors_recorded():
    """summary() used to take its lock and then read `counts`, which takes it again: a deadlock."""
    import threading

    report = LoadReport()
    report.add(MissingFileError("a.png", "file not found"))
    report.add(MissingFileError("b.png", "file not found"))
    out = {}
    reader = threading.Thread(target=lambda: out.setdefault("summary", report.summary()), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert "summary" in out, "LoadReport.summary() deadlocked"
    assert out["summary"].startswith("2 task(s) skipped: {'MissingFileError': 2}")
