"""Read a local VC-RewardBench copy into typed items, naming every item that is malformed.

Published layout: JSON files (a list) or JSONL files of items with ``id``, ``idx``, ``category`` (the
task kind: table / chart / svg), ``gt_img_path``, ``pred_img_path``, ``human_errors`` (the reference
discrepancies, typed by ``type``, which the official scorer reads; severity may be absent) and
cached judge outputs under ``pred_json*`` keys (a dict with ``errors``, a list, or raw text).

Each item keeps its raw ``human_errors`` for the official scorer (``visual_erm.bench.official``,
with its own type and severity rules) and a coerced ``reference`` critique for the per-error one.
A human error outside the kind's types rejects the item by default (``off_list_errors="reject"``:
label bugs surface); ``"drop"`` keeps the item without that error, as the official scorer does
(``visual_erm.bench.cli`` loads that way). Relative image paths resolve against the benchmark file's folder.

A benchmark run over hundreds of items must not die on one broken line: every problem becomes a
``BenchItemError`` naming the item (or the file and line when no id can be read), collected in
``BenchData.errors``; ``strict=True`` raises the first one instead.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from visual_erm import tfds_source
from visual_erm.schema import (
    KINDS,
    Critique,
    Discrepancy,
    Notes,
    coerce_critique,
    coerce_discrepancy,
    parse_critique,
    severity_given,
)

log = logging.getLogger(__name__)

PRED_PREFIX = "pred_json"
OFF_LIST_MODES = ("reject", "drop")
_LIST_KEYS = ("items", "data", "examples")


class BenchItemError(Exception):
    """A problem with one benchmark item (``item_id``) or, if no id is readable, one ``source``."""

    def __init__(self, item_id: str | None, reason: str, source: str | None = None) -> None:
        self.item_id = item_id
        self.reason = reason
        self.source = source
        where = f"item {item_id!r}" if item_id is not None else "record"
        at = f" ({source})" if source else ""
        super().__init__(f"{where}{at}: {reason}")

    def __reduce__(self):  # picklable across worker processes despite the custom signature
        return type(self), (self.item_id, self.reason, self.source)


@dataclasses.dataclass(frozen=True)
class BenchItem:
    """One benchmark item: a reference/rendered image pair and its human-labelled discrepancies."""

    id: str
    kind: str
    reference: Critique
    severity_known: bool = True  # False when some human error had no severity (default used)
    idx: int | None = None
    gt_img_path: str | None = None
    pred_img_path: str | None = None
    judge_outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""
    human_errors: tuple | None = None  # the raw entries (official scoring); None: use `reference`
    reference_png: bytes | None = None  # image bytes, when the item comes from a TFDS dataset
    candidate_png: bytes | None = None

    def images(self):
        """(reference, rendered) as RGB PIL images, from the stored bytes or the image files."""
        from PIL import Image

        stored = ((self.reference_png, self.gt_img_path), (self.candidate_png, self.pred_img_path))
        return tuple(Image.open(io.BytesIO(data) if data is not None else path).convert("RGB") for data, path in stored)


@dataclasses.dataclass
class BenchData:
    items: list[BenchItem]
    errors: list[BenchItemError]


def _records(path: Path) -> Iterator[tuple[Any, str] | BenchItemError]:
    """Raw records with their source ("file:line" or "file[i]"), or errors for unreadable parts."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield BenchItemError(None, f"cannot read file: {exc}", str(path))
        return
    if path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"{path}:{n}"
            except (ValueError, RecursionError) as exc:
                yield BenchItemError(None, f"invalid JSON line: {exc}", f"{path}:{n}")
        return
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        yield BenchItemError(None, f"invalid JSON file: {exc}", str(path))
        return
    if isinstance(data, dict):
        data = next((data[k] for k in _LIST_KEYS if isinstance(data.get(k), list)), data)
    if not isinstance(data, list):
        yield BenchItemError(None, "expected a JSON list of items", str(path))
        return
    for i, record in enumerate(data):
        yield record, f"{path}[{i}]"


def _scalar_id(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)
    return None


def _image(raw: Mapping[str, Any], key: str, base: Path, required: bool, name: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise BenchItemError(name, f"missing {key!r}")
        return None
    if not isinstance(value, str):
        raise BenchItemError(name, f"{key!r} must be a string path, got {type(value).__name__}")
    try:
        resolved = Path(value) if Path(value).is_absolute() else base / value
        found = resolved.is_file()
    except (OSError, ValueError) as exc:  # e.g. an embedded NUL byte
        raise BenchItemError(name, f"{key!r} is not a usable path: {exc}") from None
    if required and not found:
        where = ("an absolute path that does not exist on this machine" if Path(value).is_absolute()
                 else f"resolved against {base}; image_root= resolves relative paths elsewhere")
        raise BenchItemError(name, f"{key!r} image file not found: {resolved} ({where})")
    return str(resolved) if found else value


def parse_item(
    raw: Any,
    source: str = "",
    *,
    image_root: Path | None = None,
    require_images: bool = False,
    default_severity: int = 1,
    off_list_errors: str = "reject",
) -> BenchItem:
    """One raw record -> BenchItem; raises BenchItemError naming the item on any problem.

    Relative image paths resolve against ``image_root`` (default: the working directory). A human
    error that cannot be coerced (e.g. a type not allowed for the kind) rejects the item, or with
    ``off_list_errors="drop"`` is left out of ``reference`` (noted in its problems).
    """
    if off_list_errors not in OFF_LIST_MODES:
        raise ValueError(f"off_list_errors must be one of {OFF_LIST_MODES}, got {off_list_errors!r}")
    if not isinstance(raw, Mapping):
        raise BenchItemError(None, f"item is a {type(raw).__name__}, expected an object", source)
    item_id = _scalar_id(raw.get("id"))
    if item_id is None:
        name = _scalar_id(raw.get("idx"))  # name the record by idx when it has one
        raise BenchItemError(f"idx={name}" if name else None, "missing or non-scalar 'id'", source)
    kind = raw.get("category")
    kind = kind.strip().lower() if isinstance(kind, str) else kind
    if kind not in KINDS:
        raise BenchItemError(item_id, f"'category' must be one of {KINDS}, got {kind!r}", source)
    human = raw.get("human_errors")
    if not isinstance(human, list):
        got = type(human).__name__
        raise BenchItemError(item_id, f"'human_errors' must be a list, got {got}", source)
    notes = Notes()
    errors: list[Discrepancy] = []
    severity_known = True
    for i, entry in enumerate(human):
        if isinstance(entry, Mapping) and not severity_given(entry):
            severity_known = False
        e = coerce_discrepancy(entry, kind, notes, i, default_severity)
        if e is not None:
            errors.append(e)
    if len(errors) != len(human) and off_list_errors == "reject":
        raise BenchItemError(item_id, "bad human_errors: " + "; ".join(notes.result()), source)
    base = image_root if image_root is not None else Path(".")
    idx = raw.get("idx")
    return BenchItem(
        id=item_id,
        kind=kind,
        reference=Critique(tuple(errors), valid=True, problems=notes.result()),
        severity_known=severity_known,
        idx=idx if isinstance(idx, int) and not isinstance(idx, bool) else None,
        gt_img_path=_image(raw, "gt_img_path", base, require_images, item_id),
        pred_img_path=_image(raw, "pred_img_path", base, require_images, item_id),
        judge_outputs={
            k: v for k, v in raw.items() if isinstance(k, str) and k.startswith(PRED_PREFIX)
        },
        source=source,
        human_errors=tuple(human),
    )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file())
    if not path.exists():
        raise FileNotFoundError(f"no benchmark file or directory at {path}")
    return [path]


def read_records(path: str | Path) -> Iterator[tuple[Any, str, Path] | BenchItemError]:
    """Raw records under ``path`` as (record, source, file), or errors for unreadable parts."""
    for file in _files(Path(path)):
        for record in _records(file):
            yield record if isinstance(record, BenchItemError) else (*record, file)


def load_bench(
    path: str | Path,
    *,
    strict: bool = False,
    require_images: bool = False,
    image_root: str | Path | None = None,
    default_severity: int = 1,
    off_list_errors: str = "reject",
) -> BenchData:
    """Load every item under ``path`` (a .json/.jsonl file or a directory of them).

    Image paths resolve against ``image_root`` (default: the item's file directory); with
    ``require_images`` both images must exist. Human errors without severity get
    ``default_severity`` and the item is marked ``severity_known=False``. Duplicate ids are errors.
    ``off_list_errors``: see ``parse_item`` (``"drop"`` for official scoring).
    ``path`` may also name a split of a TFDS dataset, "tfds:vc_rewardbench:test@DATA_DIR"
    (``visual_erm.datasets``); its items carry their image bytes.
    """
    if tfds_source.is_tfds(path):
        return _load_tfds(path, strict=strict, default_severity=default_severity, off_list_errors=off_list_errors)
    root = Path(image_root) if image_root is not None else None
    items: list[BenchItem] = []
    errors: list[BenchItemError] = []
    seen: set[str] = set()
    for file in _files(Path(path)):
        for record in _records(file):
            try:
                if isinstance(record, BenchItemError):
                    raise record
                item = parse_item(
                    record[0], record[1], image_root=root or file.parent,
                    require_images=require_images, default_severity=default_severity,
                    off_list_errors=off_list_errors,
                )  # fmt: skip
                if item.id in seen:
                    raise BenchItemError(item.id, "duplicate id", item.source)
            except BenchItemError as exc:
                if strict:
                    raise
                errors.append(exc)
                continue
            seen.add(item.id)
            items.append(item)
    if errors:
        log.warning("%d benchmark records skipped; first: %s", len(errors), errors[0])
    return BenchData(items, errors)


def _load_tfds(location: str, *, strict: bool, default_severity: int, off_list_errors: str) -> BenchData:
    """Items of a `vc_rewardbench*` split, parsed by the same `parse_item` as the published files."""
    source = tfds_source.data_source(location)
    items, errors = [], []
    for index in range(len(source)):
        row = source[index]
        name = tfds_source.as_str(row["source"])
        try:
            try:
                raw = json.loads(tfds_source.as_str(row["record"]))
            except (ValueError, RecursionError) as exc:  # as a file's unreadable line (`_records`)
                raise BenchItemError(None, f"invalid JSON record: {exc}", name) from None
            item = parse_item(raw, name, default_severity=default_severity, off_list_errors=off_list_errors)
        except BenchItemError as exc:
            if strict:
                raise
            errors.append(exc)
            continue
        items.append(dataclasses.replace(item, reference_png=bytes(row["reference"]),
                                         candidate_png=bytes(row["candidate"])))
    if errors:
        log.warning("%d benchmark records skipped; first: %s", len(errors), errors[0])
    return BenchData(items, errors)


def load_items(path: str | Path, **kwargs: Any) -> list[BenchItem]:
    """Items only (problems are logged); use ``load_bench`` to get the errors too."""
    return load_bench(path, **kwargs).items


def judge_keys(items: Sequence[BenchItem]) -> list[str]:
    """The cached judges present (``pred_json*`` keys), sorted."""
    return sorted({k for item in items for k in item.judge_outputs})


def to_critique(value: Any, kind: str | None) -> Critique:
    """A judge output (Critique, list of Discrepancy, decoded JSON, raw text) -> Critique.

    Never raises; ``None`` is an invalid critique. Ready-made Critique/Discrepancy objects are taken
    as they are (no category filtering by ``kind``).
    """
    if isinstance(value, Critique):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(e, Discrepancy) for e in value):
        return Critique(tuple(value))
    if isinstance(value, str):
        return parse_critique(value, kind)
    if value is None:
        return Critique.invalid("no output")
    return coerce_critique(value, kind)


def collect_predictions(
    items: Sequence[BenchItem], outputs: Mapping[str, Any], label: str = "prediction"
) -> tuple[dict[str, Critique], list[BenchItemError]]:
    """``id -> output`` (dict / list / raw text / Critique) -> ``id -> Critique`` plus item errors.

    Missing outputs are errors and left out; invalid outputs are errors but stay in the mapping (as
    invalid critiques): a judge that fails is still scored.
    """
    out: dict[str, Critique] = {}
    errors: list[BenchItemError] = []
    for item in items:
        if item.id not in outputs:
            errors.append(BenchItemError(item.id, f"no {label}", item.source))
            continue
        critique = to_critique(outputs[item.id], item.kind)
        if not critique.valid:
            reason = "; ".join(critique.problems) or "invalid"
            errors.append(BenchItemError(item.id, f"{label} unparsable: {reason}", item.source))
        out[item.id] = critique
    return out, errors


def judge_predictions(
    items: Sequence[BenchItem], key: str = PRED_PREFIX
) -> tuple[dict[str, Critique], list[BenchItemError]]:
    """One cached judge (``pred_json*`` key) as ``id -> Critique``, plus item errors."""
    outputs = {item.id: item.judge_outputs[key] for item in items if key in item.judge_outputs}
    return collect_predictions(items, outputs, f"{key!r} output")
