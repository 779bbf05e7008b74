"""Rewards for vision-to-code rollouts, selectable by name: Visual-ERM and the baselines it replaces.

Every reward is a pure function ``fn(task, completion, rendered, critique, **deps) -> float`` where
``task`` has ``.kind``, ``.code`` (reference code) and ``.reference_image`` (PIL), ``rendered`` is the
``RenderResult`` of the extracted code (None when nothing was rendered) and ``critique`` the judge's
``Critique`` (or raw text). ``compute_rewards(name, inputs, **deps)`` scores a batch; ``deps`` carry
what a reward needs beyond its inputs (the ``embedder`` for ``embedding_cosine``, severity settings).

Defined values, so a policy can never profit from breaking the pipeline: no code, a render failure
or (for Visual-ERM) a blank image score the minimum of the reward. Baselines are clipped to [0, 1]
and give 0 on failure. ``visual_erm`` uses the published form per kind: charts and SVGs
``1 + critique_reward`` in [1, 2] (0 on failure, so any rendered non-blank image beats every
failure); tables minus the total severity, -4 on a parse or render failure (``table_form="shaped"``
gives tables the chart/SVG form). "Blank" is the official all-white check (``blank="white"``;
``blank="uniform"`` also catches near-uniform images of any colour). The text rewards
(``text_similarity``, ``teds*``) need reference code and raise ValueError for a task without it
(dataset tasks may carry only an image); ``teds*`` also refuse non-table tasks. A reward that
cannot score a sample for a reason of its own (an unreadable reference) raises ``RewardFailure``:
``score_rewards`` counts it, warns, and gives the sample the reward's failure value.
``rl.task_sources.RLTask`` serves as ``task`` directly. ``rl/probes.py`` shows which of these rewards a
policy can game.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import Levenshtein
import numpy as np
from flax import nnx
from PIL import Image

from policy.image_processor import (
    DEFAULT_IMAGE_BUCKETS,
    DEFAULT_PATCH_BUCKETS,
    ImageProcessor,
    binned_buckets,
    pad_images,
)
from policy.vision import VisionInputs, vision_metadata
from render import RenderResult
from rl.extract import extract_code
from rl.shapes import oracle_critique
from visual_erm.reward import critique_reward, table_severity_reward
from visual_erm.schema import Critique

log = logging.getLogger(__name__)

BLANK_TOLERANCE = 12  # per-channel distance (0..255) still counted as the background colour
BLANK_FRACTION = 1e-3  # at most this share of off-background pixels makes an image blank
# TEDS (APTED) is super-quadratic: ~2 s at 200 cells, ~20 s at 800 on a busy 2-core host. Bigger
# predicted tables score 0 rather than stall a GRPO step (their true TEDS is at most
# n_reference / n_prediction anyway); a reference above the cap is a counted RewardFailure.
MAX_TEDS_NODES = 600
TABLE_FAILURE_REWARD = -4.0  # published table reward on a parse or render failure
BLANK_MODES = ("white", "uniform")
TABLE_FORMS = ("published", "shaped")


class RewardFailure(Exception):
    """A reward could not score a sample for a reason that is not the policy's fault."""


class VisionEmbedder:
    """Pooled vision-tower features: the mean of ``model.encode_images``' merged patch features.

    Stands in for the DINO/CLIP embeddings of published baselines, built from the policy's own
    tower so no second model is needed. The tower is copied at construction: a frozen embedding
    (as DINO/CLIP are) whose buffers a train step that donates the policy's cannot delete.
    Images are patched on the host, padded to patch/image
    buckets (few jit shapes, in the tower's vision bins) and encoded ``max_images`` at a time.
    """

    def __init__(self, model, image_processor=None, *, max_images: int = 8,
                 patch_buckets: Sequence[int] | None = None, image_buckets: Sequence[int] | None = None):
        vision = model.config.vision
        if image_processor is None:  # 8x8 .. 16x16 merged tokens: a coarse embedding needs no more
            factor = vision.patch_size * vision.spatial_merge_size
            image_processor = ImageProcessor(patch_size=vision.patch_size, merge_size=vision.spatial_merge_size,
                                             temporal_patch_size=vision.temporal_patch_size,
                                             min_pixels=(8 * factor) ** 2, max_pixels=(16 * factor) ** 2)
        if image_processor.patch_dim != vision.patch_dim or image_processor.merge_size != vision.spatial_merge_size:
            raise ValueError(f"image processor patches ({image_processor.patch_dim}, merge "
                             f"{image_processor.merge_size}) do not fit the vision tower ({vision.patch_dim}, "
                             f"merge {vision.spatial_merge_size})")
        graphdef, state = nnx.split(model.visual)
        self.tower = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))
        self.config = model.config
        self.image_processor = image_processor
        self.max_images = max_images
        self.patch_buckets = tuple(patch_buckets or binned_buckets(DEFAULT_PATCH_BUCKETS, model.config.vision_bin))
        self.image_buckets = tuple(image_buckets or DEFAULT_IMAGE_BUCKETS)

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """[N, out_hidden_size] float32 pooled features, one row per image."""
        chunks = [self._encode_chunk(list(images[i : i + self.max_images]))
                  for i in range(0, len(images), self.max_images)]
        width = self.config.vision.out_hidden_size
        return np.concatenate(chunks, 0) if chunks else np.zeros((0, width), np.float32)

    def _encode_chunk(self, images: list[Image.Image]) -> np.ndarray:
        unit = self.image_processor.merge_size**2
        batch = self.image_processor(images)
        padded = pad_images(batch["pixel_values"], batch["image_grid_thw"], merge_size=self.image_processor.merge_size,
                            patch_buckets=self.patch_buckets, image_buckets=self.image_buckets,
                            bin_patches=self.config.vision_bin)
        meta = vision_metadata(batch["image_grid_thw"], self.config, padded["pixel_values"].shape[0])
        owner = padded["patch_segment_ids"][::unit]  # merged row -> image (-1 for padding)
        assign = (owner[None, :] == np.arange(padded["image_mask"].shape[0])[:, None]).astype(np.float32)
        assign /= np.maximum(assign.sum(1, keepdims=True), 1.0)
        pooled = _pooled_features(self.tower, jnp.asarray(padded["pixel_values"]),
                                  VisionInputs(*(jnp.asarray(x) for x in meta)), jnp.asarray(assign))
        return np.asarray(pooled, np.float32)[: len(images)]


@nnx.jit
def _pooled_features(tower, pixel_values, meta, assign):
    """Per-image mean of merged patch features (``assign`` rows are averaging weights)."""
    merged, _ = tower(pixel_values, meta)
    return assign @ merged.astype(jnp.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class ReferenceTask:
    """What every reward needs to know about the task: its kind, code and rendered image."""

    kind: str
    code: str | None  # None for dataset tasks that ship only an image
    reference_image: Image.Image | None = None


@dataclasses.dataclass(frozen=True)
class RewardInput:
    """One rollout sample: the task, the policy's completion, its rendering and the judge's critique."""

    task: Any  # ReferenceTask or anything with .kind, .code, .reference_image
    completion: str
    rendered: RenderResult | None = None
    critique: Critique | str | None = None


def _rendered_image(rendered: RenderResult | None) -> Image.Image | None:
    if rendered is None or rendered.error is not None or rendered.image is None:
        return None
    return rendered.image


def is_blank(image: Image.Image, mode: str = "white", tolerance: int = BLANK_TOLERANCE,
             fraction: float = BLANK_FRACTION) -> bool:
    """``white`` (the official check): every pixel's grey level is 255. ``uniform``: all pixels
    ~one colour: at most ``fraction`` of them differ from the median colour by more than
    ``tolerance`` in some channel (anti-aliasing noise and JPEG-like speckle stay blank)."""
    if mode not in BLANK_MODES:
        raise ValueError(f"blank mode must be one of {BLANK_MODES}, got {mode!r}")
    if mode == "white":
        return bool((np.asarray(image.convert("L")) == 255).all())
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    if pixels.shape[0] == 0:
        return True
    background = np.median(pixels, axis=0)
    off = (np.abs(pixels - background) > tolerance).any(axis=1)
    return bool(off.mean() <= fraction)


def visual_erm_reward(task, completion, rendered, critique, *, max_severity: float = 50.0,
                      invalid_severity: float = 25.0, table_form: str = "published", blank: str = "white",
                      **_: Any) -> float:
    """Published Visual-ERM. Tables (``table_form="published"``): minus the total severity, -4
    without code, on a render failure, a blank image or an unparsable critique. Charts, SVGs (and
    tables with ``table_form="shaped"``): 0 without code, on a render failure or a blank image, else
    ``1 + critique_reward`` in [1, 2], an unparsable critique counting ``invalid_severity``. A
    missing critique counts as an unparsable one."""
    if table_form not in TABLE_FORMS:
        raise ValueError(f"table_form must be one of {TABLE_FORMS}, got {table_form!r}")
    published_table = task.kind == "table" and table_form == "published"
    failure = TABLE_FAILURE_REWARD if published_table else 0.0
    if extract_code(task.kind, completion).code is None:
        return failure
    image = _rendered_image(rendered)
    if image is None or is_blank(image, blank):
        return failure
    if critique is None:
        critique = Critique.invalid("no critique was produced")
    if published_table:
        return table_severity_reward(critique, TABLE_FAILURE_REWARD)
    return 1.0 + critique_reward(critique, task.kind, max_severity=max_severity,
                                 invalid_severity=invalid_severity)


def oracle_critic(task, completion, rendered, critique=None, **params: Any) -> float:
    """`visual_erm_reward` with the critique a perfect judge would write (shapes task only,
    `rl.shapes.oracle_critique`): the upper bound of any judge's reward in the reward comparison."""
    code = extract_code(task.kind, completion).code
    oracle = oracle_critique(task.code, code, task.reference_image, _rendered_image(rendered))
    return visual_erm_reward(task, completion, rendered, oracle, **params)


def _need_reference_code(task, reward: str) -> None:
    if getattr(task, "code", None) is None:  # e.g. an RLTask from a dataset without reference code
        raise ValueError(f"{reward} compares against reference code, and this task has none")


def text_similarity(task, completion, rendered=None, critique=None, **_: Any) -> float:
    """1 - Levenshtein distance / longer length, between extracted and reference code (stripped)."""
    _need_reference_code(task, "text_similarity")
    code = extract_code(task.kind, completion).code
    if code is None:
        return 0.0
    a, b = code.strip(), task.code.strip()
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - Levenshtein.distance(a, b) / longest


def teds_document(code: str) -> str:
    """Markdown or HTML table -> the ``<html><body><table>`` document TEDS reads.

    Markdown goes through ``render.table.table_html`` (what the renderer draws). The first table is
    kept (TEDS only reads ``body/table``) and header cells become ``td``: TEDS scores the content of
    ``td`` nodes only, so a typo in a ``th`` header would otherwise cost nothing.
    """
    from lxml import html as lxml_html

    from render.table import table_html

    tree = lxml_html.fromstring(f"<html><body>{table_html(code)}</body></html>")
    tables = tree.xpath("//table")
    if not tables:
        raise ValueError("no <table> element after parsing")
    table = tables[0]
    for cell in table.iter("th"):
        cell.tag = "td"
    return "<html><body>" + lxml_html.tostring(table, encoding="unicode") + "</body></html>"


def _teds(task, completion, structure_only: bool, max_nodes: int) -> float:
    if task.kind != "table":
        raise ValueError(f"TEDS is a table reward; got a {task.kind!r} task")
    _need_reference_code(task, "teds")
    code = extract_code("table", completion).code
    if code is None:
        return 0.0
    from table_recognition_metric import TEDS  # a missing dependency is an error, not a zero reward

    ref = _scorable_reference(task.code, structure_only, max_nodes)
    try:
        pred = teds_document(code)
        if pred.count("<") > 2 * max_nodes:  # an opening and a closing tag per node: too big to score
            return 0.0
        return float(np.clip(TEDS(structure_only=structure_only)(pred, ref), 0.0, 1.0))
    except Exception:
        return 0.0


@functools.lru_cache(maxsize=4096)
def _scorable_reference(code: str, structure_only: bool, max_nodes: int) -> str:
    """The reference's TEDS document, once checked to score 1 against itself; RewardFailure if it
    cannot be read or scored (every sample of its group would otherwise get a silent 0)."""
    from table_recognition_metric import TEDS  # a missing dependency is an error, not a zero reward

    try:
        ref = teds_document(code)
    except Exception as error:
        raise RewardFailure(f"reference table unreadable: {error}") from error
    if ref.count("<") > 2 * max_nodes:
        raise RewardFailure(f"reference table above the TEDS cap of {max_nodes} nodes")
    try:
        TEDS(structure_only=structure_only)(ref, ref)
    except Exception as error:
        raise RewardFailure(f"TEDS cannot score the reference table: {error}") from error
    return ref


def teds(task, completion, rendered=None, critique=None, *, max_nodes: int = MAX_TEDS_NODES,
         **_: Any) -> float:
    """TEDS (structure and cell text) of the extracted table against the reference; 0 on failure."""
    return _teds(task, completion, False, max_nodes)


def teds_structure(task, completion, rendered=None, critique=None, *, max_nodes: int = MAX_TEDS_NODES,
                   **_: Any) -> float:
    """TEDS-Struct: structure (rows, cells, spans) only; 0 on failure."""
    return _teds(task, completion, True, max_nodes)


def image_pair(reference: Image.Image, candidate: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 RGB in [0, 1], the candidate resized (bicubic) to the reference size."""
    ref = reference.convert("RGB")
    cand = candidate.convert("RGB")
    if cand.size != ref.size:
        cand = cand.resize(ref.size, Image.BICUBIC)
    return np.asarray(ref, np.float64) / 255.0, np.asarray(cand, np.float64) / 255.0


def ssim(task, completion, rendered, critique=None, *, grayscale: bool = False, **_: Any) -> float:
    """skimage SSIM (7x7 windows, data range 1) against the reference, clipped to [0, 1]; 0 on failure."""
    from skimage.metrics import structural_similarity

    image = _rendered_image(rendered)
    if image is None or task.reference_image is None:
        return 0.0
    ref, cand = image_pair(task.reference_image, image)
    if min(ref.shape[:2]) < 7:
        return 0.0
    if grayscale:
        weights = np.array([0.299, 0.587, 0.114])
        value = structural_similarity(ref @ weights, cand @ weights, data_range=1.0)
    else:
        value = structural_similarity(ref, cand, data_range=1.0, channel_axis=-1)
    return float(np.clip(value, 0.0, 1.0))


def mse(task, completion, rendered, critique=None, **_: Any) -> float:
    """1 - mean squared error over RGB pixels in [0, 1] (so in [0, 1]); 0 on render failure."""
    image = _rendered_image(rendered)
    if image is None or task.reference_image is None:
        return 0.0
    ref, cand = image_pair(task.reference_image, image)
    return float(1.0 - np.mean((ref - cand) ** 2))


def embedding_cosine(task, completion, rendered, critique=None, *, embedder: VisionEmbedder,
                     **_: Any) -> float:
    """Cosine of pooled vision-tower features (a DINO/CLIP stand-in), clipped to [0, 1]; 0 on failure."""
    image = _rendered_image(rendered)
    if image is None or task.reference_image is None:
        return 0.0
    features = embedder([task.reference_image, image])
    return float(np.clip(cosine(features[0], features[1]), 0.0, 1.0))


def embedding_cosine_batch(inputs: Sequence[RewardInput], *, embedder: VisionEmbedder,
                           **_: Any) -> np.ndarray:
    """``embedding_cosine`` for a batch in few device calls; each reference image is encoded once."""
    out = np.zeros(len(inputs), np.float32)
    images: list[Image.Image] = []
    slot: dict[int, int] = {}
    pairs: list[tuple[int, int, int]] = []
    for i, item in enumerate(inputs):
        image = _rendered_image(item.rendered)
        reference = item.task.reference_image
        if image is None or reference is None:
            continue
        if id(reference) not in slot:
            slot[id(reference)] = len(images)
            images.append(reference)
        images.append(image)
        pairs.append((i, slot[id(reference)], len(images) - 1))
    if pairs:
        features = embedder(images)
        for i, r, c in pairs:
            out[i] = np.clip(cosine(features[r], features[c]), 0.0, 1.0)
    return out


@dataclasses.dataclass(frozen=True)
class RewardFn:
    """A registered reward: the per-sample ``fn``, an optional batched form, the deps it requires."""

    fn: Callable[..., float]
    batch: Callable[..., np.ndarray] | None = None
    requires: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("chart", "table", "svg")
    failure_value: float = 0.0  # given to a sample the reward raised RewardFailure on


REWARDS: dict[str, RewardFn] = {
    "visual_erm": RewardFn(visual_erm_reward),
    "oracle_critic": RewardFn(oracle_critic, kinds=("svg",)),
    "text_similarity": RewardFn(text_similarity),
    "teds": RewardFn(teds, kinds=("table",)),
    "teds_structure": RewardFn(teds_structure, kinds=("table",)),
    "ssim": RewardFn(ssim),
    "mse": RewardFn(mse),
    "embedding_cosine": RewardFn(embedding_cosine, embedding_cosine_batch, requires=("embedder",)),
}


def compute_rewards(name: str, inputs: Sequence[RewardInput], **deps: Any) -> np.ndarray:
    """Rewards [len(inputs)] float32 for the registered reward ``name``; ``deps`` go to every call."""
    return score_rewards(name, inputs, **deps)[0]


def score_rewards(name: str, inputs: Sequence[RewardInput], **deps: Any) -> tuple[np.ndarray, np.ndarray]:
    """(rewards [N] float32, failed [N] bool): samples the reward could not score for a reason of
    its own (``RewardFailure``) get ``failure_value`` and are counted and logged, never hidden."""
    if name not in REWARDS:
        raise KeyError(f"unknown reward {name!r}; registered: {sorted(REWARDS)}")
    spec = REWARDS[name]
    missing = [d for d in spec.requires if d not in deps]
    if missing:
        raise TypeError(f"reward {name!r} needs {missing} (pass them as keyword arguments)")
    if spec.batch is not None:
        return np.asarray(spec.batch(list(inputs), **deps), np.float32), np.zeros(len(inputs), bool)
    rewards, failed = np.zeros(len(inputs), np.float32), np.zeros(len(inputs), bool)
    for i, x in enumerate(inputs):
        try:
            rewards[i] = spec.fn(x.task, x.completion, x.rendered, x.critique, **deps)
        except RewardFailure as error:
            rewards[i], failed[i] = spec.failure_value, True
            log.warning("reward %s failed on sample %d (scored %g): %s", name, i, spec.failure_value, error)
    return rewards, failed
