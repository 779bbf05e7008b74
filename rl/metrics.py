"""Task metrics of predicted code against the reference, per benchmark (numbers, not rewards).

Each number follows the official scorer it is named after (which function is cited per item):

chart (ChartMimic's low-level scores, ``chart2code/utils/evaluator/*``, from traces of what the
code drew; `render.trace`):
  Each F1 compares the prediction's trace P with the reference's trace R. With ``m`` matched
  items, ``precision = m / |P|``, ``recall = m / |R|`` and ``F1 = 2 precision recall /
  (precision + recall)`` (0 when that sum is 0). F1 = 0 when either side is empty, both included
  (the evaluators' ``_calculate_metrics`` return 0 before counting).

  * ``text_f1``: items are the drawn strings (multisets; ``m = sum_s min(#P(s), #R(s))``), roles
    in `TEXT_ROLES` only: tick labels are left out by default, as ChartMimic's evaluator deletes
    the ticks before logging texts (``ticks=True`` keeps them).
  * ``layout_f1``: items are subplot grid positions ``(nrows, ncols, row_start, row_end,
    col_start, col_end)``, multisets as above. ChartMimic's ``graph`` charts (networkx) log every
    axis as ``(1, 1, 0, 1, 0, 1)`` (``LayoutEvaluator._get_suffix_special_for_graph``); so do we
    for tasks whose id names a ``graph_`` chart.
  * ``type_f1``: items are the outermost plotting calls by chart type (``{"bar": 2}`` is two
    items), ``m = sum_t min(P_t, R_t)``.
  * ``color_f1``: items are ``(chart type, colour)`` pairs. Colours only match within one chart
    type ``t``; ``m = sum_t max_M sum_{(p, r) in M} sim(p, r)`` over one-to-one matchings M of the
    type's predicted and reference colours (Hungarian algorithm; ChartMimic enumerates the same
    permutations), with ``sim(p, r) = max(0, 1 - CIEDE2000(lab(p), lab(r)) / 100)`` for hex
    colours (skimage ``rgb2lab``, sRGB D65) and ``sim = [p == r]`` for ``cmap:<name>`` entries.
    A side with more than 10 colours is first thinned as ``color_utils.filter_color`` does
    (`merge_colors`): in drawing order, a colour is kept only if its similarity to every colour
    kept so far is at most 0.7 (ChartMimic takes them in ``set`` order, which is arbitrary).
  * ``execution_rate``: 1 when the prediction rendered, else 0 (and every F1 is 0).
  * ``low_level``: the mean of the four F1s.

plot2code (Plot2Code's own metrics, ``plot2code/eval/*``, for tasks of source "plot2code"):
  * ``pass_rate``: the code ran and its image is not all white (``text_match_score.py`` skips
    all-white images; ``combine_evaluation_results.py`` divides the rest by all items).
  * ``text_match``: ``matched / (matched + unmatched_reference + unmatched_prediction)`` over the
    lower-cased, stripped, non-empty strings drawn (every role, ticks included), matched one-to-one
    by exact string; 1 when neither side has text (``match_texts``). The official also requires the
    two texts' positions to be close; traces carry no positions, so ours can only be higher. Averaged
    over passing items, as the official average is (`summarize` skips None).

table: ``teds`` and ``teds_structure`` are TEDS as PubTabNet defines it (table_recognition_metric,
  the official implementation's port) on our HTML documents with ``th`` cells kept (that metric
  reads cell text of ``td`` only, so header text is not compared, as there); the GRPO reward
  (`rl.rewards.teds`) differs by turning ``th`` into ``td``. Identical documents score 1 without the
  tree edit distance (exact: distance 0), so large perfect tables cost a parse, not APTED; other
  tables above ``max_nodes`` are not scored (None: left out of the mean, counted in `summarize`'s
  ``unscored``) rather than given a false 0. ``ned`` is the normalised edit distance
  ``Levenshtein(a, b) / max(|a|, |b|)`` between the documents, whitespace between tags removed
  (Markdown and equivalent HTML compare equal); 1 without a table.

svg (StarVector's ``starvector/metrics``): ``ssim`` = `starvector_ssim` (``compute_SSIM``: skimage
  SSIM of uint8 RGB images, 11x11 uniform window, data range 255, sample covariance; not clipped)
  and ``mse`` = mean squared error of RGB values in [0, 1] (``compute_l2``: ToTensor then
  ``mse_loss``; lower is better); the prediction is resized (bicubic) to the reference size when it
  differs. A prediction that did not render is scored as a white canvas, as StarVector's
  ``rasterize_svg`` returns one; ``render_rate`` counts the renders.

`score_predictions` renders predictions (and chart references, traced) through a RenderPool and
returns one row per task; `summarize` averages rows per family (`METRICS_BY_FAMILY`).
"""
from __future__ import annotations

import ast
import collections
import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence

import Levenshtein
import numpy as np
from PIL import Image

from rl.extract import extract_code

TEXT_ROLES = ("title", "label", "legend", "text")
METRICS = {
    "chart": ("execution_rate", "text_f1", "layout_f1", "type_f1", "color_f1", "low_level"),
    "table": ("teds", "teds_structure", "ned"),
    "svg": ("render_rate", "ssim", "mse"),
}
PLOT2CODE_METRICS = ("pass_rate", "text_match")
METRICS_BY_FAMILY = {**METRICS, "plot2code": PLOT2CODE_METRICS}  # a row's family: its kind, or "plot2code"
MERGE_COLORS_ABOVE = 10  # ChartMimic thins colour lists longer than this
MERGE_SIMILARITY = 0.7
GRAPH_LAYOUT = (1, 1, 0, 1, 0, 1)  # every axis of a ChartMimic graph chart
MAX_METRIC_TEDS_NODES = 1000  # APTED is super-quadratic: ~20 s at 800 nodes on a busy 2-core host
SSIM_WINDOW = 11
LOWER_IS_BETTER = frozenset({"ned", "mse"})
_BETWEEN_TAGS = re.compile(r">\s+<")


@dataclasses.dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of one comparison."""

    precision: float
    recall: float
    f1: float


def prf(matched: float, n_pred: int, n_ref: int) -> PRF:
    """P = matched / n_pred, R = matched / n_ref, F1 their harmonic mean; 0 when either side is
    empty, both included (ChartMimic's evaluators)."""
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


def layout_f1(pred: dict, ref: dict, *, graph: bool = False) -> PRF:
    """Subplot grid positions; for a ChartMimic graph chart every axis is `GRAPH_LAYOUT`."""
    if graph:
        return multiset_f1([GRAPH_LAYOUT] * len(pred["layout"]), [GRAPH_LAYOUT] * len(ref["layout"]))
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


def merge_colors(colors: Sequence) -> list:
    """ChartMimic's ``filter_color`` for lists longer than `MERGE_COLORS_ABOVE`: in order, keep a
    ``(type, colour)`` pair only if its colour's similarity to every kept colour (any type) is at
    most `MERGE_SIMILARITY`."""
    colors = [tuple(c) for c in colors]
    if len(colors) <= MERGE_COLORS_ABOVE:
        return colors
    kept: list = []
    for pair in colors:
        if all(color_similarity(pair[1], other[1]) <= MERGE_SIMILARITY for other in kept):
            kept.append(pair)
    return kept


def color_f1(pred: dict, ref: dict) -> PRF:
    """Colours matched within each chart type (see the module docstring)."""
    pred_colors, ref_colors = merge_colors(pred["colors"]), merge_colors(ref["colors"])
    groups_p: dict[str, list[str]] = collections.defaultdict(list)
    groups_r: dict[str, list[str]] = collections.defaultdict(list)
    for kind, color in pred_colors:
        groups_p[kind].append(color)
    for kind, color in ref_colors:
        groups_r[kind].append(color)
    matched = sum(best_matching(groups_p[t], groups_r[t]) for t in set(groups_p) & set(groups_r))
    return prf(matched, len(pred_colors), len(ref_colors))


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


def is_graph_chart(task) -> bool:
    """A ChartMimic ``graph_<n>`` task (its layout is scored the graph way)."""
    return task.source == "chartmimic" and task.id.rsplit("/", 1)[-1].startswith("graph_")


def chart_scores(rendered, reference_trace: dict, *, ticks: bool = False, graph: bool = False) -> dict[str, float]:
    """ChartMimic low-level scores of a traced prediction render (None: no code) vs a reference trace."""
    trace = None if rendered is None or rendered.error is not None else rendered.trace
    if trace is None:
        return dict.fromkeys(METRICS["chart"], 0.0)
    scores = {"execution_rate": 1.0,
              "text_f1": text_f1(trace, reference_trace, ticks=ticks).f1,
              "layout_f1": layout_f1(trace, reference_trace, graph=graph).f1,
              "type_f1": type_f1(trace, reference_trace).f1,
              "color_f1": color_f1(trace, reference_trace).f1}
    scores["low_level"] = float(np.mean([scores[k] for k in ("text_f1", "layout_f1", "type_f1", "color_f1")]))
    return scores


def plot2code_scores(rendered, reference_trace: dict) -> dict[str, float | None]:
    """Plot2Code's pass rate and text match of a traced prediction render (None: no code)."""
    image = None if rendered is None or rendered.error is not None else rendered.image
    if image is None or bool(np.all(np.asarray(image.convert("RGB")) == 255)):
        return {"pass_rate": 0.0, "text_match": None}
    return {"pass_rate": 1.0,
            "text_match": None if rendered.trace is None else text_match(rendered.trace, reference_trace)}


def text_match(pred: dict, ref: dict) -> float:
    """Plot2Code's ``match_texts`` without positions: exact one-to-one matches of lower-cased,
    stripped, non-empty drawn strings; ``matched / (matched + unmatched on both sides)``, 1 if none."""
    def strings(trace: dict) -> collections.Counter:
        return collections.Counter(t for t in (s.strip().lower() for _, s in trace["texts"]) if t)

    p, r = strings(pred), strings(ref)
    matched = sum((p & r).values())
    total = sum(p.values()) + sum(r.values()) - matched  # matched + unmatched_pred + unmatched_ref
    return 1.0 if total == 0 else matched / total


def normalized_edit_distance(a: str, b: str) -> float:
    """Levenshtein(a, b) / max(|a|, |b|); 0 for two empty strings."""
    longest = max(len(a), len(b))
    return 0.0 if longest == 0 else Levenshtein.distance(a, b) / longest


def table_document(code: str) -> str:
    """Markdown or HTML table -> ``<html><body><table>...`` with ``th`` kept (what the metric reads)."""
    from lxml import html as lxml_html

    from render.table import table_html

    tables = lxml_html.fromstring(f"<html><body>{table_html(code)}</body></html>").xpath("//table")
    if not tables:
        raise ValueError("no <table> element after parsing")
    return "<html><body>" + lxml_html.tostring(tables[0], encoding="unicode") + "</body></html>"


def _document(code: str) -> str | None:
    """`table_document` without whitespace-only text between tags (layout, not content)."""
    try:
        return _BETWEEN_TAGS.sub("><", table_document(code.strip()))
    except Exception:
        return None


def teds_metric(prediction: str | None, reference: str | None, *, structure_only: bool = False,
                max_nodes: int = MAX_METRIC_TEDS_NODES) -> float | None:
    """PubTabNet TEDS of two `table_document`s: 0 without a prediction, 1 for identical documents
    (no tree edit distance needed), None (unscored) when a table has more than `max_nodes` nodes."""
    if prediction is None or reference is None:
        return 0.0
    if prediction == reference:
        return 1.0
    if max(prediction.count("<"), reference.count("<")) > 2 * max_nodes:  # an opening and a closing tag per node
        return None
    from table_recognition_metric import TEDS

    return float(np.clip(TEDS(structure_only=structure_only)(prediction, reference), 0.0, 1.0))


def table_scores(task, completion: str, *, max_nodes: int = MAX_METRIC_TEDS_NODES) -> dict[str, float | None]:
    """TEDS, TEDS-structure (``th`` kept) and the normalised edit distance of the HTML documents."""
    code = extract_code("table", completion).code
    prediction = None if code is None else _document(code)
    reference = _document(task.code)
    if prediction is None:
        ned = 1.0
    elif reference is None:  # a reference the normaliser cannot read: compare the raw texts
        ned = normalized_edit_distance(code.strip(), task.code.strip())
    else:
        ned = normalized_edit_distance(prediction, reference)
    return {"teds": teds_metric(prediction, reference, max_nodes=max_nodes),
            "teds_structure": teds_metric(prediction, reference, structure_only=True, max_nodes=max_nodes),
            "ned": ned}


def starvector_ssim(reference: np.ndarray, candidate: np.ndarray) -> float:
    """StarVector's ``compute_SSIM`` on two uint8 RGB arrays of one shape: skimage SSIM with an
    11x11 uniform window, data range 255 (uint8), sample covariance, K1 0.01, K2 0.03; the mean
    over channels of the mean SSIM map, not clipped (it can be negative). Their other branch (non-RGB
    arrays averaged to float grey) passes no data range, which current skimage refuses for floats."""
    from skimage.metrics import structural_similarity

    if reference.dtype != np.uint8 or candidate.dtype != np.uint8 or reference.shape != candidate.shape:
        raise ValueError("starvector_ssim needs two uint8 arrays of one shape")
    return float(structural_similarity(reference, candidate, win_size=SSIM_WINDOW, data_range=255, channel_axis=-1))


def starvector_mse(reference: np.ndarray, candidate: np.ndarray) -> float:
    """StarVector's ``compute_l2``: mean squared difference of RGB values scaled to [0, 1]."""
    return float(np.mean((reference.astype(np.float64) / 255.0 - candidate.astype(np.float64) / 255.0) ** 2))


def svg_scores(task, completion: str, rendered) -> dict[str, float]:
    """Render rate, StarVector SSIM and MSE of the rendered prediction (a white canvas if it failed)."""
    ok = rendered is not None and rendered.error is None and rendered.image is not None
    reference = task.reference_image.convert("RGB")
    candidate = rendered.image.convert("RGB") if ok else Image.new("RGB", reference.size, "white")
    if candidate.size != reference.size:
        candidate = candidate.resize(reference.size, Image.BICUBIC)
    ref, cand = np.asarray(reference), np.asarray(candidate)
    return {"render_rate": float(ok), "ssim": starvector_ssim(ref, cand), "mse": starvector_mse(ref, cand)}


# ---------------------------------------------------------------- batches


def family(task) -> str:
    """Which metrics a task gets: its kind, or "plot2code" for Plot2Code's charts."""
    return "plot2code" if task.source == "plot2code" else task.kind


def score_predictions(tasks: Sequence, completions: Sequence[str], pool, *, ticks: bool = False,
                      max_nodes: int = MAX_METRIC_TEDS_NODES, timeout_s: float | None = None) -> list[dict]:
    """One row per task: ``id``, ``kind``, ``family``, ``source``, ``error`` (render error kind,
    "no_code" or None) and the family's metrics. Chart rows whose reference failed to render carry
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
        row = {"id": task.id, "kind": task.kind, "family": family(task), "source": task.source,
               "error": "no_code" if code is None else (rendered.error.kind if rendered and rendered.error else None)}
        if task.kind == "chart":
            reference = ref_future.result()
            if reference.error is not None or reference.trace is None:
                row["reference_error"] = str(reference.error or "no trace")
            elif row["family"] == "plot2code":
                row.update(plot2code_scores(rendered, reference.trace))
            else:
                row.update(chart_scores(rendered, reference.trace, ticks=ticks, graph=is_graph_chart(task)))
        elif task.kind == "table":
            row.update(table_scores(task, completion, max_nodes=max_nodes))
        else:
            row.update(svg_scores(task, completion, rendered))
        rows.append(row)
    return rows


def summarize(rows: Iterable[dict]) -> dict[str, dict]:
    """Per family: ``n`` scored rows, ``skipped`` (reference failures), the mean of each metric over
    the rows that have it (None: unscored, e.g. a huge table's TEDS or a failed Plot2Code text match)
    and, where some were, ``unscored`` counts per metric."""
    rows, out = list(rows), {}
    for name, metrics in METRICS_BY_FAMILY.items():
        mine = [r for r in rows if r.get("family", r["kind"]) == name]
        if not mine:
            continue
        scored = [r for r in mine if "reference_error" not in r]
        entry: dict = {"n": len(scored), "skipped": len(mine) - len(scored)}
        unscored = {}
        for metric in metrics:
            values = [r[metric] for r in scored if r.get(metric) is not None]
            entry[metric] = float(np.mean(values)) if values else float("nan")
            if len(values) < len(scored):
                unscored[metric] = len(scored) - len(values)
        if unscored:
            entry["unscored"] = unscored
        out[name] = entry
    return out


__all__ = [
    "LOWER_IS_BETTER", "MAX_METRIC_TEDS_NODES", "METRICS", "METRICS_BY_FAMILY", "PLOT2CODE_METRICS", "PRF",
    "TEXT_ROLES", "best_matching", "chart_scores", "color_f1", "color_similarity", "family", "is_graph_chart",
    "layout_f1", "merge_colors", "multiset_f1", "normalized_edit_distance", "plot2code_scores",
    "prediction_code", "prf", "score_predictions", "starvector_mse", "starvector_ssim", "summarize",
    "svg_scores", "table_document", "table_scores", "teds_metric", "text_f1", "text_match", "type_f1",
]
