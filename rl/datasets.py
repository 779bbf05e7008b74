"""Loaders for local copies of published vision-to-code datasets, in their published layouts.

Nothing is downloaded: each loader reads a folder the user fetched. Each returns a `TaskSource`
(rl.task_sources): a grain RandomAccessDataSource that is also an iterator of RLTask. Problems are
typed `TaskLoadError`s naming the file and the record (line, row or file name): found while
indexing (bad JSON line, missing field, missing image) or while reading a task (unreadable
image, reference that does not render). They are collected in ``source.report`` and the task is
skipped; ``strict=True`` raises the first one instead.
"""
from __future__ import annotations

import bisect
import collections
import html
import json
import pathlib
import threading

from rl.task_sources import (
    BadRecordError,
    MissingFieldError,
    MissingFileError,
    Reference,
    TaskLoadError,
    TaskSource,
    open_rgb,
    read_text,
)


def _json_record(raw: bytes, path, record) -> dict:
    try:
        value = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise BadRecordError(path, f"bad JSON line ({exc})", record) from exc
    if not isinstance(value, dict):
        raise BadRecordError(path, f"expected a JSON object, got {type(value).__name__}", record)
    return value


def _field(value: dict, key: str, kind: type, path, record):
    if value.get(key) is None:
        raise MissingFieldError(path, f"missing field {key!r}", record)
    if not isinstance(value[key], kind):
        raise BadRecordError(path, f"field {key!r} is a {type(value[key]).__name__}, expected {kind.__name__}", record)
    return value[key]


def _json_lines(path):
    """(line number, byte offset, raw line) for each non-blank line of a JSONL file."""
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                yield number, offset, raw
            offset += len(raw)


# ---------------------------------------------------------------- ChartMimic


class ChartMimicSource(TaskSource):
    """ChartMimic Direct Mimic: ``<id>.png`` reference charts with their ``<id>.py`` code."""

    name = "chartmimic"

    def __init__(self, path, *, split: str = "direct_600", **options):
        super().__init__(**options)
        root = pathlib.Path(path)
        folder = root / split if (root / split).is_dir() else root
        if not folder.is_dir() or not (any(folder.glob("*.py")) or any(folder.glob("*.png"))):
            raise MissingFileError(root / split, f"no ChartMimic split folder {split!r} (with <id>.py and <id>.png)")
        self.folder, self.split = folder, folder.name
        self.stems = []
        for stem in sorted({p.stem for p in folder.glob("*.py")} | {p.stem for p in folder.glob("*.png")}):
            code, image = folder / f"{stem}.py", folder / f"{stem}.png"
            if not code.is_file():
                self._error(MissingFileError(image, f"no reference code {code.name} beside it"))
            elif not image.is_file():
                hint = " (only a .pdf: convert it, e.g. pdftoppm -png -r 120 -singlefile)" if (
                    folder / f"{stem}.pdf").is_file() else ""
                self._error(MissingFileError(code, f"no reference image {image.name}{hint}"))
            else:
                self.stems.append(stem)

    def __len__(self) -> int:
        return len(self.stems)

    def _reference(self, index: int) -> Reference:
        stem = self.stems[index]
        code = read_text(self.folder / f"{stem}.py")
        image = open_rgb(self.folder / f"{stem}.png")
        return Reference(f"chartmimic/{self.split}/{stem}", "chart", code, image, str(self.folder / f"{stem}.py"))


def load_chartmimic(path, *, split: str = "direct_600", strict: bool = False, report=None) -> ChartMimicSource:
    """ChartMimic (github.com/ChartMimic/ChartMimic; data: HF dataset ChartMimic/ChartMimic).

    Layout of ``dataset-iclr.tar.gz`` unpacked into `path`::

        path/direct_600/  path/direct_1800/  path/customized_600/  path/customized_1800/
            <type>_<n>.py    matplotlib code (ends with plt.savefig('<type>_<n>.pdf'))
            <type>_<n>.png   the rendered reference chart
            <type>_<n>.pdf   the same chart as PDF (unused)

    (the older ``dataset-old.tar.gz`` has ``ori_500/`` laid out the same way). `path` may also be
    the split folder itself. Use a ``direct_*`` split: there the code reproduces the image; a
    ``customized_*`` code answers an extra instruction (``dimentions_info_edit.jsonl``) too.
    Task ids are ``chartmimic/<split>/<type>_<n>``; kind "chart".
    """
    return ChartMimicSource(path, split=split, strict=strict, report=report)


# ---------------------------------------------------------------- Plot2Code


PLOT2CODE_METADATA = ("metadata.jsonl", "data/python_matplotlib/test/metadata.jsonl", "test/metadata.jsonl")


class Plot2CodeSource(TaskSource):
    """Plot2Code's Hugging Face imagefolder: ``metadata.jsonl`` rows naming PNGs beside it."""

    name = "plot2code"

    def __init__(self, path, **options):
        super().__init__(**options)
        root = pathlib.Path(path)
        candidates = [root] if root.is_file() else [root / c for c in PLOT2CODE_METADATA]
        metadata = next((c for c in candidates if c.is_file()), None)
        if metadata is None:
            raise MissingFileError(root, f"no Plot2Code metadata.jsonl (looked for {', '.join(PLOT2CODE_METADATA)})")
        self.metadata = metadata
        self.entries: list[tuple[str, pathlib.Path, str]] = []
        for number, _, raw in _json_lines(metadata):
            record = f"line {number}"
            try:
                row = _json_record(raw, metadata, record)
                file_name = _field(row, "file_name", str, metadata, record)
                code = _field(row, "code", str, metadata, record)
                image = metadata.parent / file_name
                if not image.is_file():
                    raise MissingFileError(metadata, f"image {file_name!r} not found in {metadata.parent}", record)
            except TaskLoadError as error:
                self._error(error)
                continue
            self.entries.append((f"plot2code/{pathlib.PurePosixPath(file_name).stem}", image, code))

    def __len__(self) -> int:
        return len(self.entries)

    def _reference(self, index: int) -> Reference:
        task_id, image, code = self.entries[index]
        return Reference(task_id, "chart", code, open_rgb(image, task_id), str(image))


def load_plot2code(path, *, strict: bool = False, report=None) -> Plot2CodeSource:
    """Plot2Code (HF dataset TencentARC/Plot2Code; eval code github.com/TencentARC/Plot2Code).

    A ``git clone`` of the dataset repository, or the folder holding its ``metadata.jsonl``::

        path/data/python_matplotlib/test/metadata.jsonl    (current revision; older: path/test/)
        path/data/python_matplotlib/test/ground_truth_image_<i>.png

    Each metadata line is a JSON object with ``file_name`` (the PNG beside it, the imagefolder
    convention that becomes the ``image`` feature), ``code`` (the matplotlib gallery code),
    and ``url`` and ``instruction`` (unused here). Task ids are ``plot2code/<file stem>``.
    """
    return Plot2CodeSource(path, strict=strict, report=report)


# ---------------------------------------------------------------- PubTabNet


def pubtabnet_html(annotation: dict, path="", record=None) -> str:
    """The HTML table of a PubTabNet ``html`` annotation: cell tokens poured into the structure.

    As in PubTabNet's own ``format_html``: each ``<td>`` or ``>`` structure token (the end of a
    ``<td colspan=..>``) is followed by the next cell's tokens, single characters HTML-escaped.
    """
    structure = annotation.get("structure")
    tokens = structure.get("tokens") if isinstance(structure, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise MissingFieldError(path, "missing field 'html.structure.tokens' (a list of strings)", record)
    cells = annotation.get("cells", annotation.get("cell"))  # the README says 'cell', the data 'cells'
    if not isinstance(cells, list) or not all(isinstance(c, dict) and isinstance(c.get("tokens"), list) for c in cells):
        raise MissingFieldError(path, "missing field 'html.cells' (a list of {'tokens': [...]})", record)
    slots = sum(token in ("<td>", ">") for token in tokens)
    if slots != len(cells):
        raise BadRecordError(path, f"structure has {slots} cells but 'html.cells' has {len(cells)}", record)
    out, contents = [], iter(cells)
    for token in tokens:
        out.append(token)
        if token in ("<td>", ">"):
            out.append("".join(html.escape(t) if len(t) == 1 else t for t in next(contents)["tokens"]))
    return "<table>" + "".join(out) + "</table>"


class PubTabNetSource(TaskSource):
    """PubTabNet 2.0.0: table images and their HTML, one split of ``PubTabNet_2.0.0.jsonl``."""

    name = "pubtabnet"

    def __init__(self, path, *, split: str = "val", annotation: str = "PubTabNet_2.0.0.jsonl",
                 limit: int | None = None, **options):
        super().__init__(**options)
        root = pathlib.Path(path)
        self.annotation = root if root.is_file() else root / annotation
        if not self.annotation.is_file():
            raise MissingFileError(self.annotation, "PubTabNet annotation file not found")
        self.root, self.split = self.annotation.parent, split
        self.entries: list[tuple[int, int]] = []  # (byte offset, line number) of the split's records
        for number, offset, raw in _json_lines(self.annotation):
            try:
                self._parse(raw, number, check_image=True)
            except _OtherSplit:
                continue
            except TaskLoadError as error:
                self._error(error)
                continue
            self.entries.append((offset, number))
            if limit is not None and len(self.entries) >= limit:
                break

    def _parse(self, raw: bytes, number: int, check_image: bool) -> tuple[str, str, pathlib.Path]:
        record = f"line {number}"
        row = _json_record(raw, self.annotation, record)
        if _field(row, "split", str, self.annotation, record) != self.split:
            raise _OtherSplit
        filename = _field(row, "filename", str, self.annotation, record)
        record = f"line {number}, {filename}"
        code = pubtabnet_html(_field(row, "html", dict, self.annotation, record), self.annotation, record)
        image = self.root / self.split / filename
        if check_image and not image.is_file():
            raise MissingFileError(self.annotation, f"image {self.split}/{filename} not found in {self.root}", record)
        return filename, code, image

    def __len__(self) -> int:
        return len(self.entries)

    def _reference(self, index: int) -> Reference:
        offset, number = self.entries[index]
        with open(self.annotation, "rb") as handle:
            handle.seek(offset)
            raw = handle.readline()
        filename, code, image = self._parse(raw, number, check_image=False)
        task_id = f"pubtabnet/{self.split}/{filename}"
        return Reference(task_id, "table", code, open_rgb(image, task_id), str(image))


class _OtherSplit(Exception):
    """A PubTabNet record of another split (not an error)."""


def load_pubtabnet(path, *, split: str = "val", annotation: str = "PubTabNet_2.0.0.jsonl",
                   limit: int | None = None, strict: bool = False, report=None) -> PubTabNetSource:
    """PubTabNet 2.0.0 (github.com/ibm-aur-nlp/PubTabNet; ``pubtabnet.tar.gz`` from IBM's DAX).

    Layout of the unpacked archive::

        path/PubTabNet_2.0.0.jsonl     one JSON object per line:
            {"filename": "PMC..._003_00.png", "split": "train" | "val" | "test", "imgid": int,
             "html": {"structure": {"tokens": ["<thead>", "<tr>", "<td>", "</td>", ...]},
                      "cells": [{"tokens": ["3", ".", "1"], "bbox": [x0, y0, x1, y1]}, ...]}}
        path/train/<filename>  path/val/<filename>  path/test/<filename>

    The reference code is the HTML table rebuilt from the tokens (`pubtabnet_html`); the test
    split ships without ``html``. `limit` stops indexing after that many tasks (the full file
    has ~510k lines). Task ids are ``pubtabnet/<split>/<filename>``; kind "table".
    """
    return PubTabNetSource(path, split=split, annotation=annotation, limit=limit, strict=strict, report=report)


# ---------------------------------------------------------------- StarVector SVG sets


def _parquet():
    try:
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise ImportError("reading StarVector's parquet files needs pyarrow (pip install pyarrow)") from exc
    return parquet


def _parquet_files(root: pathlib.Path, split: str) -> list[pathlib.Path]:
    if root.is_file():
        return [root]
    patterns = (f"data/{split}-*.parquet", f"{split}-*.parquet", f"default/{split}/*.parquet", f"{split}/*.parquet")
    for pattern in patterns:
        files = sorted(root.glob(pattern))
        if files:
            return files
    return []


class StarVectorSource(TaskSource):
    """StarVector's SVG datasets: parquet rows of an id (``Filename``, or ``Id`` in FIGR-SVG) and
    ``Svg``, rendered at `size`."""

    name = "starvector"
    ID_COLUMNS = ("Filename", "Id")  # svg-icons/stack/emoji/fonts name rows by Filename; FIGR-SVG by Id
    SVG_COLUMN = "Svg"

    def __init__(self, path, *, split: str = "test", size=(224, 224), dataset: str | None = None,
                 cache_row_groups: int = 4, **options):
        super().__init__(size=size, **options)
        parquet = _parquet()
        root = pathlib.Path(path)
        self.files = _parquet_files(root, split)
        if not self.files:
            raise MissingFileError(root, f"no {split!r} parquet files (looked for data/{split}-*.parquet, "
                                         f"default/{split}/*.parquet)")
        self.dataset = dataset or (root.name if root.is_dir() else root.stem)
        self.groups: list[tuple[pathlib.Path, int, int, str]] = []  # (file, row group, first row, id column)
        self.starts: list[int] = []  # each group's first task index
        total = 0
        for file in self.files:
            try:
                meta = parquet.ParquetFile(file)
            except Exception as exc:
                self._error(BadRecordError(file, f"not a readable parquet file ({exc})"))
                continue
            names = meta.schema_arrow.names
            id_column = next((c for c in self.ID_COLUMNS if c in names), None)
            missing = [c for c in (self.SVG_COLUMN,) if c not in names] + (
                [] if id_column else [" or ".join(self.ID_COLUMNS)])
            if missing:
                self._error(MissingFieldError(file, f"missing column(s) {missing}; has {names}"))
                continue
            first = 0
            for group in range(meta.num_row_groups):
                rows = meta.metadata.row_group(group).num_rows
                self.groups.append((file, group, first, id_column))
                self.starts.append(total)
                total, first = total + rows, first + rows
        self.total = total
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._cache_size = max(1, int(cache_row_groups))
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.total

    def _columns(self, file: pathlib.Path, group: int, id_column: str) -> tuple[list, list]:
        """One row group's columns, from a small LRU cache (random access decodes whole groups)."""
        key = (file, group)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            table = _parquet().ParquetFile(file).read_row_group(group, columns=[id_column, self.SVG_COLUMN])
            value = (table.column(id_column).to_pylist(), table.column(self.SVG_COLUMN).to_pylist())
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return value

    def _reference(self, index: int) -> Reference:
        g = bisect.bisect_right(self.starts, index) - 1
        file, group, first, id_column = self.groups[g]
        names, svgs = self._columns(file, group, id_column)
        row = index - self.starts[g]
        record = f"row {first + row}"
        name, svg = names[row], svgs[row]
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)  # FIGR-SVG ids may be stored as integers
        if not isinstance(name, str) or not name:
            raise MissingFieldError(file, f"empty {id_column!r}", record)
        if not isinstance(svg, str) or not svg.strip():
            raise MissingFieldError(file, f"empty 'Svg' for {name!r}", record)
        return Reference(f"starvector/{self.dataset}/{name}", "svg", svg, where=f"{file} ({record})")


def load_starvector(path, *, split: str = "test", size=(224, 224), renderer=None, dataset: str | None = None,
                    strict: bool = False, report=None) -> StarVectorSource:
    """StarVector's icon-to-SVG sets (HF datasets starvector/svg-icons, svg-stack, svg-emoji, ...).

    A ``git clone`` of the dataset repository (parquet, as ``datasets`` pushes it)::

        path/data/train-00000-of-000NN.parquet  path/data/val-*.parquet  path/data/test-*.parquet

    (or the Hub's ``refs/convert/parquet`` layout ``path/default/<split>/0000.parquet``, or one
    parquet file). Columns: ``Filename`` (unique id; ``Id`` in FIGR-SVG, whose ``Caption`` is not
    used) and ``Svg`` (SVG source). Each SVG is the
    reference code, rendered through `renderer` at `size` = (W, H). Needs pyarrow. Random access
    decodes a whole row group (cached, `cache_row_groups`): shuffle a split that fits, e.g. test.
    Task ids are ``starvector/<dataset folder name>/<Filename or Id>``; kind "svg".
    """
    return StarVectorSource(path, split=split, size=size, renderer=renderer, dataset=dataset,
                            strict=strict, report=report)


__all__ = [
    "ChartMimicSource", "Plot2CodeSource", "PubTabNetSource", "StarVectorSource", "load_chartmimic",
    "load_plot2code", "load_pubtabnet", "load_starvector", "pubtabnet_html",
]
