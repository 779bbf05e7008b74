"""Test-time reflection and revision: answer, render, critique, revise; N rounds, batched over tasks.

Round 0 is the policy's first answer to each task's prompt. Each answer is rendered (RenderPool);
a rendering is critiqued by a pluggable `Critic` (Visual-ERM, or the `OracleCritic`), and the
critique, formatted as a numbered list, is the feedback. A render failure is passed on verbatim
(its typed message) instead of a critique; no code block and a blank image get fixed sentences.
Rounds 1..N give the policy `revision_prompt(kind, previous_code, feedback)` under the reference
image. A task whose critique lists no discrepancy is done: later rounds carry its attempt over
(``revised=False``), so every round's mean is over all tasks.

Each attempt gets the Visual-ERM reward (`rl.rewards.visual_erm_reward`: 0 without code, on a render
failure or a blank image, else 1 + critique reward, in [0, 2]) and the task metrics of `rl.metrics`
(chart: ChartMimic low-level F1s from a render trace plus SSIM; table: TEDS, TEDS-struct, NED;
svg: SSIM, MSE). The final answer is the best attempt by reward (earliest on ties) or the last.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from render import RenderResult
from rl import metrics as metrics_lib
from rl import rewards
from rl.extract import extract_code
from visual_erm.perturb.verify import changed_mask, severity_from_area
from visual_erm.prompts import code_language, revision_prompt
from visual_erm.schema import CATEGORIES, Critique, Discrepancy

KEEP = ("best", "last")
HEADLINE = {"chart": "low_level", "table": "teds", "svg": "ssim"}  # the one metric per kind in summaries
MAX_PREVIOUS_CHARS = 20_000  # a no-code answer is shown back as text, cut to this
BLANK_FEEDBACK = "The code rendered a blank image: nothing of the reference is drawn."
UNREADABLE_FEEDBACK = ("The reviewer's critique could not be read. Compare the image with what your code draws "
                       "and fix every difference.")


class Policy(Protocol):
    """Answers chat conversations (one user turn: reference image + instruction) with text."""

    def answer(self, messages: Sequence[list[dict]]) -> list[str]: ...


class Critic(Protocol):
    """Critiques rendered candidates against references (`visual_erm.judge.VisualERM` is one)."""

    def critique(self, kinds: Sequence[str], references: Sequence, candidates: Sequence) -> list[Critique]: ...


@dataclasses.dataclass
class Attempt:
    """One answer of one task in one round, and what became of it."""

    round: int
    completion: str
    code: str | None  # extracted code; None: no code block
    render: RenderResult | None  # None: nothing to render
    critique: Critique | None  # None: not judged (no code, render failure, blank image)
    feedback: str  # what the policy is told next; "" once the critique lists no discrepancy
    reward: float
    metrics: dict[str, float]
    revised: bool = True  # False: carried over from an earlier round (the task was done)

    @property
    def done(self) -> bool:
        return self.critique is not None and self.critique.valid and not self.critique.errors

    @property
    def render_error(self) -> str | None:
        if self.code is None:
            return "no_code"
        return None if self.render is None or self.render.error is None else self.render.error.kind

    def to_row(self) -> dict:
        """JSON-able record (no image)."""
        critique = None if self.critique is None else dict(self.critique.to_dict(), valid=self.critique.valid,
                                                           problems=list(self.critique.problems))
        return {"round": self.round, "revised": self.revised, "completion": self.completion, "code": self.code,
                "render_error": self.render_error,
                "render_message": None if self.render is None or self.render.error is None else str(self.render.error),
                "critique": critique, "feedback": self.feedback, "reward": self.reward, "metrics": self.metrics}


@dataclasses.dataclass
class Trajectory:
    task: object  # rl.task_sources.RLTask (id, kind, reference_image, prompt, reference_code)
    attempts: list[Attempt]

    def final_index(self, keep: str = "best") -> int:
        if keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
        if keep == "last":
            return len(self.attempts) - 1
        return int(np.argmax([a.reward for a in self.attempts]))

    def final(self, keep: str = "best") -> Attempt:
        return self.attempts[self.final_index(keep)]


# ---------------------------------------------------------------- prompts and feedback


def reflection_messages(task, previous_code: str | None = None, feedback: str | None = None) -> list[dict]:
    """The task's prompt (round 0) or its revision prompt, under the reference image."""
    text = task.prompt if previous_code is None else revision_prompt(task.kind, previous_code, feedback or "")
    return [{"role": "user", "content": [{"type": "image", "image": task.reference_image},
                                         {"type": "text", "text": text}]}]


def format_feedback(critique: Critique) -> str:
    """A critique as the numbered list the revision prompt shows; "" when it lists nothing."""
    if not critique.valid:
        return UNREADABLE_FEEDBACK
    return "\n".join(f"{i}. [{e.category}, severity {e.severity}] {e.location}: {e.description}"
                     for i, e in enumerate(critique.errors, 1))


def failure_feedback(kind: str, code: str | None, render: RenderResult | None) -> str:
    """Feedback for an answer that was not judged: no code, the render error verbatim, or blank."""
    if code is None:
        return f"No ```{code_language(kind)} code block was found in your answer."
    if render is not None and render.error is not None:
        return f"The code failed to render ({render.error.kind}): {render.error.message}"
    return BLANK_FEEDBACK


# ---------------------------------------------------------------- critics and policies


def image_key(image) -> str:
    """Content hash of a PIL image (size and RGB bytes)."""
    rgb = image.convert("RGB")
    return hashlib.sha1(repr(rgb.size).encode() + rgb.tobytes()).hexdigest()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and not changed_mask(a, b).any()


def pixel_critique(kind: str, reference, candidate) -> Critique:
    """One discrepancy locating the changed pixels (bounding box, share, severity by area); none if equal."""
    ref, cand = (np.asarray(x.convert("RGB"), np.int16) for x in (reference, candidate))
    mask = changed_mask(ref, cand)
    if ref.shape == cand.shape and not mask.any():
        return Critique(())
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    box = (f"x {cols.min() / width:.0%}-{(cols.max() + 1) / width:.0%}, "
           f"y {rows.min() / height:.0%}-{(rows.max() + 1) / height:.0%}") if mask.any() else "the whole image"
    share = float(mask.mean())
    size = "" if ref.shape == cand.shape else (f"; it is {cand.shape[1]}x{cand.shape[0]} px, the reference "
                                               f"{ref.shape[1]}x{ref.shape[0]} px")
    return Critique((Discrepancy(CATEGORIES[kind][0], severity_from_area(share) if mask.any() else 1,
                                 f"the region {box}",
                                 f"the rendering differs from the reference in the region {box} "
                                 f"({share:.1%} of the pixels){size}"),))


class OracleCritic:
    """Critiques from ground truth instead of a model.

    A candidate pixel-equal to its reference gets no discrepancy; one pixel-equal to a labelled
    candidate of that reference (`add`, e.g. a `visual_erm.perturb` edit with its exact labels)
    gets those labels; any other gets `pixel_critique`.
    """

    def __init__(self, labels: Iterable[tuple] = ()):
        self._labels: dict[str, list[tuple[np.ndarray, Critique]]] = {}
        for reference, candidate, critique in labels:
            self.add(reference, candidate, critique)

    def add(self, reference, candidate, critique: Critique) -> None:
        self._labels.setdefault(image_key(reference), []).append(
            (np.asarray(candidate.convert("RGB"), np.int16), critique))

    def critique(self, kinds: Sequence[str], references: Sequence, candidates: Sequence, **_) -> list[Critique]:
        out = []
        for kind, reference, candidate in zip(kinds, references, candidates):
            ref, cand = (np.asarray(x.convert("RGB"), np.int16) for x in (reference, candidate))
            if _same(ref, cand):
                out.append(Critique(()))
                continue
            known = [c for image, c in self._labels.get(image_key(reference), []) if _same(image, cand)]
            out.append(known[0] if known else pixel_critique(kind, reference, candidate))
        return out


class SamplerPolicy:
    """A Qwen3-VL policy (NNX model + Processor) answering with the KV-cache Sampler, in batches."""

    def __init__(self, model, processor, *, max_new_tokens: int = 2048, batch_size: int = 8, params=None,
                 mesh=None, seed: int = 0):
        import jax

        from policy.sampler import Sampler, SamplingParams

        self.processor, self.max_new_tokens, self.batch_size = processor, max_new_tokens, batch_size
        stops = [processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self.sampler = Sampler(model, pad_id=processor.pad_token_id, stop_ids=stops, mesh=mesh)
        suppress = (processor.image_token_id, processor.vision_start_token_id)
        self.params = dataclasses.replace(params or SamplingParams(temperature=0.0), suppress_ids=suppress)
        self._key = jax.random.key(seed)

    @classmethod
    def from_pretrained(cls, path: str, *, dtype=None, mesh=None, max_side: int | None = None,
                        **kwargs) -> SamplerPolicy:
        import jax.numpy as jnp

        from policy.hf_io import load_pretrained
        from policy.processor import Processor

        _, model = load_pretrained(path, dtype=dtype or jnp.float32, mesh=mesh)
        return cls(model, Processor.from_pretrained(path, max_side=max_side), mesh=mesh, **kwargs)

    def answer(self, messages: Sequence[list[dict]]) -> list[str]:
        import jax

        texts: list[str] = []
        for start in range(0, len(messages), self.batch_size):
            batch = self.processor(list(messages[start:start + self.batch_size]), padding_side="left")
            self._key, key = jax.random.split(self._key)
            out = self.sampler.generate(batch["input_ids"], batch["attention_mask"], batch["pixel_values"],
                                        batch["image_grid_thw"], max_new_tokens=self.max_new_tokens, rng=key,
                                        params=self.params)
            texts += [self.processor.decode(t[:n]) for t, n in zip(out.tokens, out.lengths)]
        return texts


# ---------------------------------------------------------------- the loop


def task_metrics(task, completion: str, render: RenderResult | None, reference_trace: dict | None) -> dict:
    """`rl.metrics` scores of one answer for its kind (chart: with SSIM); {} when a kind's metric
    needs reference code or a reference trace the task lacks."""
    if task.kind == "chart":
        scores = {} if reference_trace is None else metrics_lib.chart_scores(render, reference_trace)
        return dict(scores, ssim=rewards.ssim(task, completion, render))
    if task.kind == "table":
        return metrics_lib.table_scores(task, completion) if task.code is not None else {}
    return metrics_lib.svg_scores(task, completion, render)


def _render_size(task):
    return task.reference_image.size if task.kind == "svg" else None


def score_answers(tasks: Sequence, completions: Sequence[str], round_: int, *, critic: Critic, pool,
                  reference_traces: Sequence[dict | None], timeout_s: float | None = None) -> list[Attempt]:
    """Render every answer (concurrently), critique the non-blank renderings in one call, score all."""
    codes = [extract_code(t.kind, c).code for t, c in zip(tasks, completions)]
    futures = [None if code is None else pool.submit(t.kind, code, size=_render_size(t), timeout_s=timeout_s,
                                                     trace=t.kind == "chart")
               for t, code in zip(tasks, codes)]
    renders = [None if f is None else f.result() for f in futures]
    judged = [i for i, r in enumerate(renders)
              if r is not None and r.error is None and r.image is not None and not rewards.is_blank(r.image)]
    critiques: list[Critique | None] = [None] * len(tasks)
    if judged:
        outputs = critic.critique([tasks[i].kind for i in judged], [tasks[i].reference_image for i in judged],
                                  [renders[i].image for i in judged])
        for i, critique in zip(judged, outputs):
            critiques[i] = critique
    attempts = []
    for task, completion, code, render, critique, trace in zip(tasks, completions, codes, renders, critiques,
                                                               reference_traces):
        feedback = failure_feedback(task.kind, code, render) if critique is None else format_feedback(critique)
        attempts.append(Attempt(round_, completion, code, render, critique, feedback,
                                # one [0, 2] scale for every kind (tables too: the shaped form)
                                rewards.visual_erm_reward(task, completion, render, critique, table_form="shaped"),
                                task_metrics(task, completion, render, trace)))
    return attempts


def reference_traces(tasks: Sequence, pool, timeout_s: float | None = None) -> list[dict | None]:
    """What each chart task's reference code draws (render trace), for the ChartMimic metrics."""
    futures = [pool.submit("chart", t.code, timeout_s=timeout_s, trace=True)
               if t.kind == "chart" and t.code is not None else None for t in tasks]
    results = [None if f is None else f.result() for f in futures]
    return [None if r is None or r.error is not None else r.trace for r in results]


def previous_code(attempt: Attempt) -> str:
    """What the revision prompt shows as the previous answer: its code, else its text (cut)."""
    return attempt.code if attempt.code is not None else attempt.completion[:MAX_PREVIOUS_CHARS]


def reflect(tasks: Sequence, policy: Policy, critic: Critic, pool, *, rounds: int = 3,
            timeout_s: float | None = None, progress=None) -> list[Trajectory]:
    """Round 0 plus `rounds` revision rounds for every task; one Trajectory per task, in order.

    `progress(round, trajectories)` is called after each round (logging, partial reports).
    """
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    tasks = list(tasks)
    traces = reference_traces(tasks, pool, timeout_s)
    first = policy.answer([reflection_messages(t) for t in tasks])
    trajectories = [Trajectory(t, [a]) for t, a in zip(tasks, score_answers(
        tasks, first, 0, critic=critic, pool=pool, reference_traces=traces, timeout_s=timeout_s))]
    if progress is not None:
        progress(0, trajectories)
    for round_ in range(1, rounds + 1):
        active = [i for i, t in enumerate(trajectories) if not t.attempts[-1].done]
        for i, trajectory in enumerate(trajectories):
            if i not in active:
                trajectory.attempts.append(dataclasses.replace(trajectory.attempts[-1], round=round_, revised=False))
        if active:
            last = [trajectories[i].attempts[-1] for i in active]
            answers = policy.answer([reflection_messages(tasks[i], previous_code(a), a.feedback)
                                     for i, a in zip(active, last)])
            scored = score_answers([tasks[i] for i in active], answers, round_, critic=critic, pool=pool,
                                   reference_traces=[traces[i] for i in active], timeout_s=timeout_s)
            for i, attempt in zip(active, scored):
                trajectories[i].attempts.append(attempt)
        if progress is not None:
            progress(round_, trajectories)
    return trajectories


# ---------------------------------------------------------------- summaries


def aggregate(tasks: Sequence, attempts: Sequence[Attempt]) -> dict:
    """Means over attempts: reward, render rate, judged share; per kind the reward and every metric."""
    if not attempts:
        return {"n": 0}
    row = {"n": len(attempts), "reward_mean": float(np.mean([a.reward for a in attempts])),
           "render_rate": float(np.mean([a.render_error is None for a in attempts])),
           "done": float(np.mean([a.done for a in attempts])),
           "revised": int(sum(a.revised for a in attempts))}
    for kind in dict.fromkeys(t.kind for t in tasks):
        mine = [a for t, a in zip(tasks, attempts) if t.kind == kind]
        row[f"{kind}/n"] = len(mine)
        row[f"{kind}/reward_mean"] = float(np.mean([a.reward for a in mine]))
        for name in dict.fromkeys(k for a in mine for k in a.metrics):
            values = [a.metrics[name] for a in mine if name in a.metrics]
            row[f"{kind}/{name}"] = float(np.mean(values))
    return row


def summarize(trajectories: Sequence[Trajectory], keep: str = "best") -> dict:
    """Per round and for the kept answers: `aggregate` rows; plus how many tasks improved."""
    tasks = [t.task for t in trajectories]
    n_rounds = max((len(t.attempts) for t in trajectories), default=0)
    per_round = [dict(aggregate(tasks, [t.attempts[min(r, len(t.attempts) - 1)] for t in trajectories]), round=r)
                 for r in range(n_rounds)]
    finals = [t.final(keep) for t in trajectories]
    improved = sum(f.reward > t.attempts[0].reward for f, t in zip(finals, trajectories))
    return {"tasks": len(trajectories), "keep": keep, "rounds": per_round, "final": aggregate(tasks, finals),
            "improved": int(improved),
            "headline": {kind: HEADLINE[kind] for kind in dict.fromkeys(t.kind for t in tasks)}}


__all__ = ["Attempt", "Critic", "HEADLINE", "KEEP", "OracleCritic", "Policy", "SamplerPolicy", "Trajectory",
           "aggregate", "failure_feedback", "format_feedback", "image_key", "pixel_critique", "reflect",
           "reflection_messages", "score_answers", "summarize", "task_metrics"]
