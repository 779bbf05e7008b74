"""The main job's independent yardstick: the policy's greedy answers on held-out tasks, scored in pixels.

The GRPO reward is what the policy optimises; this is what it is for. Before and
after RL the policy redraws the same held-out targets (shape seeds never used in
training) greedily; `rl.metrics.score_predictions` scores the renders (SSIM and
pixel MSE for SVG, whatever the reward was), `rl.shapes` adds what a blank or
constant drawing cannot win on the shapes task (attribute accuracy, colour-aware IoU,
distinct drawings, scores against shuffled targets), `baselines` says what a blank
canvas and the best constant drawing score on the same targets, and a contact sheet
shows each target with the policy's renders side by side.
"""
from __future__ import annotations

import io
import itertools

import numpy as np
from PIL import Image, ImageDraw

from policy import paths
from policy.sampler import SamplingParams
from rl import metrics, shapes
from rl.rollout import policy_messages
from rl.task_mix import build_source


def heldout_tasks(spec, pool, n: int) -> list:
    """The first `n` readable tasks of `spec` (one task-source config), in order."""
    return list(itertools.islice(iter(build_source(spec, renderer=pool)), n))


def greedy_answers(trainer, tasks: list, max_new_tokens: int) -> list[str]:
    """The current policy of a GRPOTrainer answering each task greedily (one sampler call)."""
    trainer.sync_policy()
    processor = trainer.run.processor
    prompt = processor([policy_messages(t) for t in tasks], padding_side="left")
    suppress = (processor.image_token_id, processor.vision_start_token_id)
    out = trainer.sampler.generate(prompt["input_ids"], prompt["attention_mask"], prompt["pixel_values"],
                                   prompt["image_grid_thw"], max_new_tokens=max_new_tokens,
                                   params=SamplingParams(temperature=0.0, suppress_ids=suppress))
    return [processor.decode(t[:n]) for t, n in zip(out.tokens, out.lengths)]


class HeldOutEval:
    """Scores and renders of answers to fixed tasks, one call per checkpoint of interest."""

    def __init__(self, tasks: list, *, max_new_tokens: int):
        if not tasks:
            raise ValueError("held-out evaluation needs at least one task")
        self.tasks, self.max_new_tokens = tasks, max_new_tokens
        self.shapes = all(t.source == "shapes" for t in tasks)  # the toy task: attribute and IoU metrics too
        self.renders: dict[str, list] = {}  # label -> rendered image (or None) per task
        self.samples: dict[str, tuple] = {}  # label -> (answers, metric rows) per task

    def baselines(self) -> dict[str, float]:
        """`heldout/baseline/...`: what a blank canvas (and, on the shapes task, the best constant
        drawing) scores on these targets, on the metrics the policy is scored with."""
        out = {}
        svg = [t for t in self.tasks if t.kind == "svg"]
        if svg:
            white = [np.full_like(np.asarray(t.reference_image.convert("RGB")), 255) for t in svg]
            out["blank/ssim"] = float(np.mean([metrics.starvector_ssim(np.asarray(t.reference_image.convert("RGB")), w)
                                               for t, w in zip(svg, white)]))
        if self.shapes:
            out.update(shapes.baselines([t.reference_code for t in self.tasks],
                                        [t.reference_image for t in self.tasks]))
        return {f"heldout/baseline/{name}": value for name, value in out.items()}

    def __call__(self, trainer, label: str) -> dict[str, float]:
        """Scores of the trainer's policy now, as `heldout/<metric>`; renders kept under `label`."""
        return self.score(greedy_answers(trainer, self.tasks, self.max_new_tokens), trainer.pool, label)

    def score(self, texts: list[str], pool, label: str) -> dict[str, float]:
        """`rl.metrics` scores of one answer per task (averaged per kind), renders kept under `label`."""
        rows = metrics.score_predictions(self.tasks, texts, pool)
        codes = [metrics.prediction_code(t.kind, text) for t, text in zip(self.tasks, texts)]
        todo = [i for i, c in enumerate(codes) if c is not None]
        rendered = pool.map([self.tasks[i].kind for i in todo], [codes[i] for i in todo],
                            size=self.tasks[0].reference_image.size) if todo else []
        images = [None] * len(self.tasks)
        for i, result in zip(todo, rendered):
            images[i] = result.image
        self.renders[label] = images
        self.samples[label] = (texts, rows)
        summary = metrics.summarize(rows)
        out = {f"heldout/{name}": value for entry in summary.values() for name, value in entry.items()
               if name not in ("n", "skipped")}
        if self.shapes:
            scores = shapes.shape_scores(codes, images, [t.reference_code for t in self.tasks],
                                         [t.reference_image for t in self.tasks])
            out.update({f"heldout/{name}": value for name, value in scores.items()})
        return out

    def contact_sheet(self, path: str, columns: int = 8, scale: int = 3) -> str:
        """A PNG: for each of the first `columns` tasks, the target above the renders of every label."""
        tasks = self.tasks[:columns]
        width, height = (s * scale for s in tasks[0].reference_image.size)
        labels = ["target", *self.renders]
        margin = 56
        sheet = Image.new("RGB", (margin + len(tasks) * (width + 4), len(labels) * (height + 4)), "white")
        draw = ImageDraw.Draw(sheet)
        for row, label in enumerate(labels):
            y = row * (height + 4)
            draw.text((2, y + height // 2 - 5), label, fill="black")
            for col, task in enumerate(tasks):
                image = task.reference_image if label == "target" else self.renders[label][col]
                x = margin + col * (width + 4)
                if image is None:
                    draw.rectangle((x, y, x + width - 1, y + height - 1), outline="red")
                    draw.line((x, y, x + width - 1, y + height - 1), fill="red")
                else:
                    sheet.paste(image.convert("RGB").resize((width, height), Image.NEAREST), (x, y))
        png = io.BytesIO()
        sheet.save(png, format="PNG")
        return paths.write_bytes(path, png.getvalue())



TABLE_METRICS = ("iou", "acc_all", "acc_kind", "acc_color", "acc_size", "acc_position", "ssim", "render_rate",
                 "distinct")


def format_table(record: dict) -> str:
    """A Markdown table of a run's held-out metrics: before and after RL, against shuffled targets, and
    the blank-canvas and best-constant baselines on the same targets (blank SSIM is the white canvas's)."""
    def cell(key: str) -> str:
        value = record.get(key)
        return "" if value is None else f"{value:.0f}" if key.endswith("distinct") else f"{value:.3f}"

    lines = ["| held-out | start of RL | after RL | after, shuffled targets | blank canvas | best constant |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in TABLE_METRICS:
        if f"heldout/{name}" not in record:
            continue
        lines.append(f"| {name} | {cell(f'heldout/{name}/start')} | {cell(f'heldout/{name}')} | "
                     f"{cell(f'heldout/{name}_shuffled')} | {cell(f'heldout/baseline/blank/{name}')} | "
                     f"{cell(f'heldout/baseline/constant/{name}')} |")
    return "\n".join(lines)
