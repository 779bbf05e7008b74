"""RL task sources: where the policy's tasks come from (synthetic generators, icon folders, published datasets).

The code generators the synthetic source draws from live in `visual_erm.tasks`; this module serves their
references (and those of the other sources) as tasks.

An `RLTask` is one vision-to-code problem: a reference image, the policy prompt for its kind and
(when known) the reference code. A `TaskSource` is a grain RandomAccessDataSource of them:
``source[i]`` reads task i, or returns None when it cannot (a missing image, a malformed record,
a reference that does not render); each such failure is a typed `TaskLoadError` kept in the
source's `LoadReport`, and ``strict=True`` raises it instead. grain skips the Nones.

`rl.task_mix.make_task_dataset(config, seed=..., ...)` mixes named sources (this file's, the
published layouts in `rl.datasets` and `rl.shapes`) into one checkpointable `grain.MapDataset`.
Sources that render (synthetic, icons, StarVector) call a renderer from grain's reader threads:
pass a `render.RenderPool` (or ``fn(kind, code, size) -> RenderResult``) and read with threads,
e.g. ``ds.to_iter_dataset(grain.ReadOptions(num_threads=8, prefetch_buffer_size=16))``.
"""
from __future__ import annotations

import collections
import dataclasses
import pathlib
import threading
from collections.abc import Callable, Iterator, Sequence

from PIL import Image

from render import RenderResult
from visual_erm.prompts import policy_prompt
from visual_erm.tasks import KINDS, generate
from visual_erm.tasks.svg import parse_icon, to_svg

Renderer = Callable[[str, str, tuple | None], RenderResult]  # (kind, code, size) -> RenderResult


@dataclasses.dataclass(frozen=True)
class RLTask:
    """One vision-to-code problem for GRPO."""

    id: str  # unique and stable, e.g. "synthetic/chart/17", "chartmimic/direct_600/bar_1"
    kind: str  # "chart" | "table" | "svg"
    reference_image: Image.Image  # PIL RGB
    prompt: str  # visual_erm.prompts.policy_prompt(kind)
    reference_code: str | None
    source: str  # the source's name: "synthetic", "icons", "chartmimic", ...

    @property
    def code(self) -> str | None:
        """Alias of `reference_code` (rl.rewards reads ``task.code``)."""
        return self.reference_code


# ---------------------------------------------------------------- errors


class TaskLoadError(Exception):
    """A task that could not be read; names the file and the record inside it."""

    def __init__(self, where, reason: str, record=None):
        self.where, self.reason, self.record = str(where), reason, record
        at = f" ({record})" if record is not None else ""
        super().__init__(f"{self.where}{at}: {reason}")


class MissingFileError(TaskLoadError):
    """An image, code or annotation file the layout promises is not there."""


class BadRecordError(TaskLoadError):
    """A record that cannot be parsed: a bad JSON line, undecodable text, inconsistent tokens."""


class MissingFieldError(BadRecordError):
    """A record without a field the layout requires."""


class BadImageError(TaskLoadError):
    """An image file that PIL cannot read."""


class RenderFailedError(TaskLoadError):
    """Reference code that did not render (the render error's kind and message)."""


class LoadReport:
    """Errors met while loading tasks, counted by type; safe to share between reader threads."""

    def __init__(self):
        self.errors: list[TaskLoadError] = []
        self._lock = threading.Lock()

    def add(self, error: TaskLoadError) -> None:
        with self._lock:
            self.errors.append(error)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return self._counts()

    def _counts(self) -> dict[str, int]:
        return dict(collections.Counter(type(e).__name__ for e in self.errors))

    def __len__(self) -> int:
        return len(self.errors)

    def summary(self, limit: int = 5) -> str:
        with self._lock:  # not reentrant: read the counts through the unlocked helper
            lines = [f"{len(self.errors)} task(s) skipped: {self._counts()}" if self.errors else "no errors"]
            lines += [f"  {e}" for e in self.errors[:limit]]
        return "\n".join(lines)


# ---------------------------------------------------------------- helpers shared with rl.datasets


def open_rgb(path, record=None) -> Image.Image:
    """An image file as PIL RGB, transparency composited onto white; typed errors otherwise."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise MissingFileError(path, "image file not found", record)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "P", "PA"):
                rgba = image.convert("RGBA")
                page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                page.alpha_composite(rgba)
                return page.convert("RGB")
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(path, f"unreadable image ({type(exc).__name__}: {exc})", record) from exc


def read_text(path, record=None) -> str:
    """A UTF-8 text file; typed errors for a missing or undecodable one."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise MissingFileError(path, "file not found", record)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadRecordError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", record) from exc


def as_renderer(renderer) -> Renderer | None:
    """A `render.RenderPool` (anything with ``submit``) or ``fn(kind, code, size)`` as a Renderer."""
    if renderer is None or not hasattr(renderer, "submit"):
        return renderer
    return lambda kind, code, size: renderer.submit(kind, code, size=size).result()


def _size(size) -> tuple[int, int] | None:
    return None if size is None else (int(size[0]), int(size[1]))


# ---------------------------------------------------------------- sources


@dataclasses.dataclass(frozen=True)
class Reference:
    """What a source read for one task: code, and an image unless the code must be rendered."""

    id: str
    kind: str
    code: str | None
    image: Image.Image | None = None
    where: str = ""  # the file it came from, for render-failure messages


class TaskSource:
    """grain RandomAccessDataSource of RLTask (None for a task that cannot be read).

    Subclasses set `name`, implement ``__len__`` and ``_reference(index) -> Reference`` (raising
    TaskLoadError), and call `_error` for problems found while indexing.
    """

    name = "tasks"

    def __init__(self, *, renderer=None, size=None, strict: bool = False, report: LoadReport | None = None):
        self.renderer = as_renderer(renderer)
        self.size = _size(size)
        self.strict = strict
        self.report = report if report is not None else LoadReport()

    def __len__(self) -> int:
        raise NotImplementedError

    def _reference(self, index: int) -> Reference:
        raise NotImplementedError

    def _error(self, error: TaskLoadError) -> None:
        self.report.add(error)
        if self.strict:
            raise error

    def _render(self, ref: Reference) -> Image.Image:
        if self.renderer is None:
            raise ValueError(f"source {self.name!r} renders its references: pass renderer= (a render.RenderPool)")
        result = self.renderer(ref.kind, ref.code, self.size)
        if result.error is not None or result.image is None:
            raise RenderFailedError(ref.where or ref.id, f"reference did not render: {result.error}", ref.id)
        return result.image.convert("RGB")

    def __getitem__(self, index: int) -> RLTask | None:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} tasks")
        try:
            ref = self._reference(index)
            image = ref.image if ref.image is not None else self._render(ref)
        except TaskLoadError as error:
            self._error(error)
            return None
        return RLTask(ref.id, ref.kind, image, policy_prompt(ref.kind), ref.code, self.name)

    def __iter__(self) -> Iterator[RLTask]:
        for index in range(len(self)):
            task = self[index]
            if task is not None:
                yield task

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, len={len(self)}, errors={len(self.report)})"


class SyntheticSource(TaskSource):
    """`visual_erm.tasks.generate(kind, seed)` for seeds in [start, stop), each kind in turn.

    Task ``i`` is kind ``kinds[i % len(kinds)]`` with seed ``start + i // len(kinds)``: the same
    seed always gives the same code, hence the same image. References are rendered at `size`
    (None: each kind's natural size); ones that fail are skipped and counted.
    """

    name = "synthetic"

    def __init__(self, kinds: Sequence[str] = KINDS, start: int = 0, stop: int = 1000, **options):
        super().__init__(**options)
        self.kinds = tuple(kinds)
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds!r}")
        if stop < start:
            raise ValueError(f"empty seed range [{start}, {stop})")
        self.start, self.stop = int(start), int(stop)

    def __len__(self) -> int:
        return (self.stop - self.start) * len(self.kinds)

    def _reference(self, index: int) -> Reference:
        kind, seed = self.kinds[index % len(self.kinds)], self.start + index // len(self.kinds)
        try:
            task = generate(kind, seed)
        except Exception as exc:
            raise BadRecordError(f"visual_erm.tasks.{kind}", f"generator failed: {exc!r}", f"seed {seed}") from exc
        return Reference(f"synthetic/{kind}/{seed}", kind, task.code, where=f"{task.source} seed {seed}")


class IconFolderSource(TaskSource):
    """Every SVG file under a folder (sorted), rendered at a fixed `size` = (W, H).

    E.g. ``package/icons`` of an unpacked ``npm pack bootstrap-icons`` (point at ``icons/``: the
    package root also holds a <symbol> sprite and fonts). With ``normalize=True`` the reference
    code is the file reprinted by `visual_erm.tasks.svg.parse_icon` (no XML prolog, comments or
    editor namespaces); otherwise the file's text as is.
    """

    name = "icons"

    def __init__(self, path, *, size=(128, 128), pattern: str = "**/*.svg", normalize: bool = True,
                 prefix: str | None = None, **options):
        super().__init__(size=size, **options)
        self.folder = pathlib.Path(path)
        if not self.folder.is_dir():
            raise MissingFileError(self.folder, "icon folder not found")
        self.files = sorted(p for p in self.folder.glob(pattern) if p.is_file())
        self.prefix = prefix or self.folder.name
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.files)

    def _reference(self, index: int) -> Reference:
        path = self.files[index]
        text = read_text(path)
        if self.normalize:
            try:
                text = to_svg(parse_icon(text, size=None))
            except Exception as exc:
                raise BadRecordError(path, f"not a well-formed SVG ({type(exc).__name__}: {exc})") from exc
        name = path.relative_to(self.folder).as_posix()
        return Reference(f"icons/{self.prefix}/{name}", "svg", text, where=str(path))


__all__ = [
    "BadImageError", "BadRecordError", "IconFolderSource", "LoadReport", "MissingFieldError",
    "MissingFileError", "RLTask", "Reference", "RenderFailedError", "Renderer",
    "SyntheticSource", "TaskLoadError", "TaskSource", "as_renderer", "open_rgb", "read_text",
]
