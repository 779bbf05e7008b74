"""Task metrics of predicted code against the reference, per kind (benchmark numbers, not rewards).

chart (ChartMimic's low-level scores, from traces of what the code drew; `render.trace`):
  Each F1 compares the prediction's trace P with the reference's trace R. With ``m`` matched
  items, ``precision = m / |P|``, ``recall = m / |R|`` and ``F1 = 2 precision recall /
  (precision + recall)`` (0 when that sum is 0). As in ChartMimic, F1 = 0 when exactly one side is
  empty; unlike it, F1 = 1 when both are (nothing to find, nothing wrong).

  * ``text_f1``: items are the drawn strings (multisets; ``m = sum_s min(#P(s), #R(s))``), roles
    in `TEXT_ROLES` only: tick labels are left out by default, as ChartMimic's evaluator deletes
    the ticks before logging texts (``ticks=True`` keeps them).
  * ``layout_f1``: items are subplot grid positions ``(nrows, ncols, row_start, row_end,
    col_start, col_end)``, multisets as above.
  * ``type_f1``: items are the outermost plotting calls by chart type (``{"bar": 2}`` is two
    items), ``m = sum_t min(P_t, R_t)``.
  * ``color_f1``: items are ``(chart type, colour)`` pairs. Colours only match within one chart
    type ``t``; ``m = sum_t max_M sum_{(p, r) in M} sim(p, r)`` over one-to-one matchings M of the
    type's predicted and reference colours (Hungarian algorithm; ChartMimic enumerates the same
    permutations), with ``sim(p, r) = max(0, 1 - CIEDE2000(lab(p), lab(r)) / 100)`` for hex
    colours (skimage ``rgb2lab``, sRGB D65) and ``sim = [p == r]`` for ``cmap:<name>`` entries.
    (ChartMimic also merges near-identical colours of charts with more than 10; we do not.)
  * ``execution_rate``: 1 when the prediction rendered, else 0 (and every F1 is 0).
  * ``low_level``: the mean of the four F1s.

table: ``teds`` and ``teds_structure`` are `rl.rewards.teds` / `teds_structure` (HTML-normalised
  TEDS; parity with table_recognition_metric is tests/rl/test_rewards.py); ``ned`` is the normalised
  edit distance ``Levenshtein(a, b) / max(|a|, |b|)`` between `rl.rewards.teds_document` of the
  prediction and of the reference, whitespace between tags removed (Markdown and equivalent HTML
  compare equal); 1 without a table.

svg: ``render_rate`` (the prediction rendered), ``ssim`` = `rl.rewards.ssim` and ``mse`` =
  ``1 - rl.rewards.mse`` (mean squared RGB error in [0, 1], prediction resized to the reference;
  lower is better); a render failure scores ssim 0 and mse 1.

`score_predictions` renders predictions (and chart references, traced) through a RenderPool and
returns one row per task; `summarize` averages rows per kind.
"""
from __future__ import annotations

import ast
import collections
import dataclasses
import functools
import re
from typing import Iterable, Sequence

import Levenshtein
import numpy as np

from rl import rewards
from rl.extract import extract_code

TEXT_ROLES = ("title", "label", "legend", "text")
METRICS = {
    "chart": ("execution_rate", "text_f1", "layout_f1", "type_f1", "color_f1", "low_level"),
    "table": ("teds", "teds_structure", "ned"),
    "svg": ("render_rate", "ssim", "mse"),
}
LOWER_IS_BETTER = frozenset({"ned", "mse"})
_BETWEEN_TAGS = re.compile(r">\s+<")


@dataclasses.dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of one comparison."""

    precision: float
    recall: float
    f1: float


def prf(matched: float, n_pred: int, n_ref: int) -> PRF:
    """P = matched / n_pred, R = matched / n_ref, F1 their harmonic mean; both empty -> 1."""
    if n_pred == 0 and n_ref == 0:
        return PRF(1.0, 1.0, 1.0)
    if n_pred == 0 or n_ref == 0:
        return PRF(0.0, 0.0, 0.0)
    p, r = matched / n_pred, matched / n_ref
    return PRF(p, r, 0.0 if p + r == 0 else 2 * p * r / (p + r))


def multiset_f1(pred: Iterable, ref: Iterable) -> PRF:
    """F1 of two multisets of hashable items: matched = size of their multiset intersection."""
    p, r = collections.Counter(pred), collections.Counter(ref)
    return prf(sum((p & r).values()), sum(p.values()), sum(r.values()))


def text_f1(pred: dict, ref: dict, *, ticks: bool = False) -> PRF:
    """Drawn strings of the roles in TEXT_ROLES (plus "tick" when `ticks`)."""
    roles = set(TEXT_ROLES) | ({"tick"} if ticks else set())
    return multiset_f1((s for role, s in pred["texts"] if role in roles),
                       (s for role, s in ref["texts"] if role in roles))


def layout_f1(pred: dict, ref: dict) -> PRF:
    """Subplot grid positions."""
    return multiset_f1(map(tuple, pred["layout"]), map(tuple, ref["layout"]))


def type_f1(pred: dict, ref: dict) -> PRF:
    """Chart-type call counts."""
    p, r = collections.Counter(pred["types"]), collections.Counter(ref["types"])
    return prf(sum((p & r).values()), sum(p.values()), sum(r.values()))


@functools.lru_cache(maxsize=4096)
def _lab(color: str) -> tuple[float, float, float]:
    from skimage.color import rgb2lab

    rgb = np.array([[int(color[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]])
    return tuple(float(v) for v in rgb2lab(rgb)[0])


def color_similarity(a: str, b: str) -> float:
    """max(0, 1 - CIEDE2000 / 100) for two "#rrggbb" colours; exact match for anything else."""
    if not (a.startswith("#") and b.startswith("#")):
        return float(a == b)
    from skimage.color import deltaE_ciede2000

    return max(0.0, 1.0 - float(deltaE_ciede2000(np.array(_lab(a)), np.array(_lab(b)))) / 100.0)


def best_matching(pred: Sequence[str], ref: Sequence[str]) -> float:
    """The largest total similarity of a one-to-one matching between two colour lists."""
    if not pred or not ref:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    sim = np.array([[color_similarity(p, r) for r in ref] for p in pred])
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sim[rows, cols].sum())


def color_f1(pred: dict, ref: dict) -> PRF:
    """Colours matched within each chart type (see the module docstring)."""
    groups_p: dict[str, list[str]] = collections.defaultdict(list)
    groups_r: dict[str, list[str]] = collections.defaultdict(list)
    for kind, color in pred["colors"]:
        groups_p[kind].append(color)
    for kind, color in ref["colors"]:
        groups_r[kind].append(color)
    matched = sum(best_matching(groups_p[t], groups_r[t]) for t in set(groups_p) & set(groups_r))
    return prf(matched, len(pred["colors"]), len(ref["colors"]))


# ---------------------------------------------------------------- one sample per kind


def prediction_code(kind: str, completion: str) -> str | None:
    """The code to score: `rl.extract.extract_code`, or for charts a completion that is bare
    Python using matplotlib (prediction files of other tools often hold code without fences)."""
    code = extract_code(kind, completion).code
    if code is None and kind == "chart" and isinstance(completion, str) and (
            "matplotlib" in completion or "plt." in completion):
        try:
            ast.parse(completion)
        except (SyntaxError, ValueError):
            return None
        return completion
    return code


def chart_scores(rendered, reference_trace: dict, *, ticks: bool = False) -> dict[str, float]:
    """ChartMimic low-level scores of a traced prediction render (None: no code) vs a reference trace."""
    trace = None if rendered is None or rendered.error is not None else rendered.trace
    if trace is None:
        return dict.fromkeys(METRICS["chart"], 0.0)
    scores = {"execution_rate": 1.0,
              "text_f1": text_f1(trace, reference_trace, ticks=ticks).f1,
              "layout_f1": layout_f1(trace, reference_trace).f1,
              "type_f1": type_f1(trace, reference_trace).f1,
              "color_f1": color_f1(trace, reference_trace).f1}
    scores["low_level"] = float(np.mean([scores[k] for k in ("text_f1", "layout_f1", "type_f1", "color_f1")]))
    return scores


def normalized_edit_distance(a: str, b: str) -> float:
    """Levenshtein(a, b) / max(|a|, |b|); 0 for two empty strings."""
    longest = max(len(a), len(b))
    return 0.0 if longest == 0 else Levenshtein.distance(a, b) / longest


def _document(code: str) -> str | None:
    """`rewards.teds_document` without whitespace-only text between tags (layout, not content)."""
    try:
        return _BETWEEN_TAGS.sub("><", rewards.teds_document(code.strip()))
    except Exception:  # noqa: BLE001 - unreadable markup is "no table"
        return None


def table_scores(task, completion: str, *, max_nodes: int = rewards.MAX_TEDS_NODES) -> dict[str, float]:
    """TEDS, TEDS-structure (rl.rewards) and the normalised edit distance of the HTML documents."""
    code = extract_code("table", completion).code
    prediction = None if code is None else _document(code)
    reference = _document(task.code)
    if prediction is None:
        ned = 1.0
    elif reference is None:  # a reference the normaliser cannot read: compare the raw texts
        ned = normalized_edit_distance(code.strip(), task.code.strip())
    else:
        ned = normalized_edit_distance(prediction, reference)
    return {"teds": rewards.teds(task, completion, max_nodes=max_nodes),
            "teds_structure": rewards.teds_structure(task, completion, max_nodes=max_nodes),
            "ned": ned}


def svg_scores(task, completion: str, rendered) -> dict[str, float]:
    """Render rate, SSIM and pixel MSE of the rendered prediction against the reference image."""
    ok = rendered is not None and rendered.error is None and rendered.image is not None
    if not ok:
        return {"render_rate": 0.0, "ssim": 0.0, "mse": 1.0}
    return {"render_rate": 1.0, "ssim": rewards.ssim(task, completion, rendered),
            "mse": 1.0 - rewards.mse(task, completion, rendered)}


# ---------------------------------------------------------------- batches


def score_predictions(tasks: Sequence, completions: Sequence[str], pool, *, ticks: bool = False,
                      max_nodes: int = rewards.MAX_TEDS_NODES, timeout_s: float | None = None) -> list[dict]:
    """One row per task: ``id``, ``kind``, ``source``, ``error`` (render error kind, "no_code" or
    None) and the kind's METRICS. Chart rows whose reference failed to render carry
    ``reference_error`` and no metrics (`summarize` skips them). Renders run concurrently."""
    if len(tasks) != len(completions):
        raise ValueError(f"{len(tasks)} tasks but {len(completions)} completions")
    codes = [prediction_code(t.kind, c) for t, c in zip(tasks, completions)]
    predicted, references = [], []
    for task, code in zip(tasks, codes):
        size = task.reference_image.size if task.kind == "svg" and task.reference_image is not None else None
        render = code is not None and task.kind in ("chart", "svg")
        predicted.append(pool.submit(task.kind, code, size=size, timeout_s=timeout_s, trace=task.kind == "chart")
                         if render else None)
        references.append(pool.submit("chart", task.code, timeout_s=timeout_s, trace=True)
                          if task.kind == "chart" else None)
    rows = []
    for task, completion, code, future, ref_future in zip(tasks, completions, codes, predicted, references):
        rendered = None if future is None else future.result()
        row = {"id": task.id, "kind": task.kind, "source": task.source,
               "error": "no_code" if code is None else (rendered.error.kind if rendered and rendered.error else None)}
        if task.kind == "chart":
            reference = ref_future.result()
            if reference.error is not None or reference.trace is None:
                row["reference_error"] = str(reference.error or "no trace")
            else:
                row.update(chart_scores(rendered, reference.trace, ticks=ticks))
        elif task.kind == "table":
            row.update(table_scores(task, completion, max_nodes=max_nodes))
        else:
            row.update(svg_scores(task, completion, rendered))
        rows.append(row)
    return rows


def summarize(rows: Iterable[dict]) -> dict[str, dict]:
    """Per kind: ``n`` scored rows, ``skipped`` (reference failures) and the mean of each metric."""
    rows, out = list(rows), {}
    for kind, names in METRICS.items():
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        scored = [r for r in mine if "reference_error" not in r]
        entry = {"n": len(scored), "skipped": len(mine) - len(scored)}
        entry.update({name: float(np.mean([r[name] for r in scored])) if scored else float("nan")
                      for name in names})
        out[kind] = entry
    return out


__all__ = [
    "LOWER_IS_BETTER", "METRICS", "PRF", "TEXT_ROLES", "best_matching", "chart_scores", "color_f1",
    "color_similarity", "layout_f1", "multiset_f1", "normalized_edit_distance", "prediction_code", "prf",
    "score_predictions", "summarize", "svg_scores", "table_scores", "text_f1", "type_f1",
]
