"""What a GRPO run records beyond its step metrics: held-out scores at the true start (kept across
resumes) and a small table of held-out samples (target, rendering, judge critique, scores) as
TensorBoard / W&B images and Markdown at each evaluation.

The start scores go into step 1's record of metrics.jsonl as `heldout/<metric>/start`; a resumed run
reads them back from there (every process reads the shared log, so all agree) instead of measuring
the resumed policy.
"""
from __future__ import annotations

import json

from PIL import Image

from policy import paths
from policy.metric_writers import MetricWriter, read_jsonl

SAMPLES = 4  # held-out samples in the table
ANSWER_CHARS = 300


def record_warm_start(workdir: str, losses: list[float]) -> None:
    """The warm start's loss curve as its own run, `<workdir>/warmstart/` (metrics.jsonl and tb/)."""
    if not losses:
        return
    writer = MetricWriter(paths.join(workdir, "warmstart"))
    for step, loss in enumerate(losses, 1):
        writer.write(step, {"warmstart/loss": loss})
    writer.close()


def saved_start(metrics_path: str) -> dict:
    """`heldout/*` scores of the policy RL started from, as a first attempt of this run wrote them
    (step 1's `heldout/*/start`); {} when there are none."""
    records = read_jsonl(metrics_path) if paths.exists(metrics_path) else []
    first = next((r for r in records if r["step"] == 1), {})
    return {k[: -len("/start")]: v for k, v in first.items() if k.endswith("/start")}


def _row_image(target: Image.Image, render: Image.Image | None, scale: int = 3) -> Image.Image:
    """Target and rendering side by side (a red-crossed box where nothing rendered)."""
    width, height = (s * scale for s in target.size)
    row = Image.new("RGB", (2 * width + 4, height), "white")
    row.paste(target.convert("RGB").resize((width, height), Image.NEAREST), (0, 0))
    if render is not None:
        row.paste(render.convert("RGB").resize((width, height), Image.NEAREST), (width + 4, 0))
    else:
        row.paste(Image.new("RGB", (width, height), (255, 200, 200)), (width + 4, 0))
    return row


def sample_table(heldout, label: str, judge=None) -> tuple[dict, str]:
    """({tag: image}, Markdown) for the first held-out samples of evaluation `label`. With a judge (every
    process must call this then: the judge runs on all hosts) each rendering gets its critique."""
    tasks = heldout.tasks[:SAMPLES]
    renders = heldout.renders[label][:SAMPLES]
    answers, rows = heldout.samples[label]
    critiques = [""] * len(tasks)
    judged = [i for i, render in enumerate(renders) if render is not None]
    if judge is not None and judged:
        outputs = judge.critique([tasks[i].kind for i in judged], [tasks[i].reference_image for i in judged],
                                 [renders[i] for i in judged])
        for i, critique in zip(judged, outputs):
            critiques[i] = critique.to_json() if critique.valid else "(unparsable)"
    images = {f"heldout_samples/{i}": _row_image(task.reference_image, render)
              for i, (task, render) in enumerate(zip(tasks, renders))}
    lines = ["| # | task | scores | critique | answer |", "|---|---|---|---|---|"]
    for i, (task, row, critique, answer) in enumerate(zip(tasks, rows, critiques, answers)):
        scores = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
        cells = [str(i), f"{task.id} ({task.kind})", json.dumps(scores), critique or "-",
                 answer[:ANSWER_CHARS].replace("|", "\\|").replace("\n", "<br>")]
        lines.append("| " + " | ".join(cell.replace("\n", " ") for cell in cells) + " |")
    return images, "\n".join(lines)


def record_samples(writer, heldout, label: str, step: int, judge=None) -> None:
    """The sample table of evaluation `label` to the run's image and text writers."""
    images, table = sample_table(heldout, label, judge)
    writer.images(step, images)
    writer.texts(step, {"heldout_samples": table})
