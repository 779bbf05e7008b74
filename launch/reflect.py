"""Reflection and revision at test time (rl/reflect.py), with an HTML report.

    python -m launch.reflect --policy=HF_DIR --judge=HF_DIR|oracle --data=NAME[:PATH]|JSON \
        [--kind=all] [--n=8] [--rounds=3] [--keep=best|last] --out=DIR

`--data` is a task source (`rl.task_sources`): a name with an optional local path as in `launch.evaluate`
(``synthetic``, ``shapes``, ``pubtabnet:/data/ptn``, ...) or a source config as JSON,
``{"name": "shapes", "params": {"canvas": 32}}``; the first `--n` tasks of `--kind` are used.
The policy answers greedily unless `--temperature` > 0. `--judge=oracle` critiques from the
reference image instead of a model (`rl.reflect.OracleCritic`: the changed region's place and
share). Writes, under `--out`: ``tasks/<NNNN>_<id>/`` (reference.png and, per round, the code,
the rendering, the critique with its feedback), ``rounds.jsonl`` (one row per task and round),
``summary.json`` and ``summary.md`` (mean reward and task metrics per round and for the kept
answers) and ``report.html`` (reference and every round's rendering side by side).
"""
from __future__ import annotations

import html
import itertools
import json
import logging
import math
import os
import re
import sys
from collections.abc import Sequence

from absl import flags

from policy import cli
from rl.reflect import HEADLINE, KEEP, OracleCritic, SamplerPolicy, Trajectory, reflect, summarize

log = logging.getLogger(__name__)
EXTENSIONS = {"chart": "py", "table": "md", "svg": "svg"}


FLAGS = flags.FlagValues()
flags.DEFINE_string("policy", None, "Hugging Face Qwen3-VL directory of the policy", flag_values=FLAGS)
flags.DEFINE_string("judge", None, "Visual-ERM Hugging Face directory, or 'oracle'", flag_values=FLAGS)
flags.DEFINE_string("data", None, "NAME[:PATH] of a task source (rl.task_mix), or a source config as JSON",
                    flag_values=FLAGS)
flags.DEFINE_string("source_params", "{}", "extra loader options as a JSON object (with NAME[:PATH])",
                    flag_values=FLAGS)
flags.DEFINE_enum("kind", "all", ("chart", "table", "svg", "all"), "task kind", flag_values=FLAGS)
flags.DEFINE_integer("n", 8, "number of tasks", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("rounds", 3, "revision rounds after the first answer", lower_bound=0, flag_values=FLAGS)
flags.DEFINE_enum("keep", "best", KEEP, "final answer: best by reward, or the last", flag_values=FLAGS)
flags.DEFINE_string("out", None, "output folder", flag_values=FLAGS)
flags.DEFINE_integer("max_new_tokens", 2048, "longest policy answer", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("judge_max_new_tokens", 1024, "longest critique", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_enum("judge_sampling", "published", ("published", "greedy"), "judge decoding", flag_values=FLAGS)
flags.DEFINE_float("temperature", 0.0, "policy sampling temperature (0: greedy)", lower_bound=0.0, flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 8, "prompts per generation call", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("workers", None, "render workers (default: CPU count)", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_float("timeout_s", 20.0, "per-render time limit", lower_bound=0.1, flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "sampling seed", flag_values=FLAGS)
flags.DEFINE_bool("allow_weak_sandbox", False, "render even where the sandbox is incomplete (no user namespaces, "
                  "as in Colab): one warning names what is missing", flag_values=FLAGS)
flags.mark_flags_as_required(["policy", "judge", "data", "out"], flag_values=FLAGS)


def parse_args(argv: Sequence[str] | None = None) -> flags.FlagValues:
    """Parse and check the command line before any model is loaded."""
    args = cli.parse(FLAGS, argv, __doc__)
    for flag in ("policy", "judge"):
        value = getattr(args, flag)
        cli.check((flag == "judge" and value == "oracle") or os.path.exists(os.path.join(value, "config.json")),
                  f"--{flag}={value}: no config.json there (expected a Hugging Face directory"
                  f"{', or oracle' if flag == 'judge' else ''})")
    cli.json_object("source_params", args.source_params)
    return args



def load_tasks(data: str, kind: str, n: int, *, params: dict, pool) -> list:
    """The first `n` tasks of `kind` from a source name (launch.evaluate's form) or a JSON source config."""
    from rl.task_mix import build_source

    if data.lstrip().startswith("{"):
        source = build_source(json.loads(data), renderer=pool)
        tasks = (t for t in source if kind in ("all", t.kind))
        return list(itertools.islice(tasks, n))
    from launch.evaluate import load_tasks as load_named

    return load_named(data, kind, limit=n, params=params, pool=pool)[:n]


def make_policy(args: flags.FlagValues) -> SamplerPolicy:
    from policy.sampler import SamplingParams

    params = SamplingParams(temperature=args.temperature)
    return SamplerPolicy.from_pretrained(args.policy, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                         params=params, seed=args.seed)


def make_critic(args: flags.FlagValues):
    if args.judge == "oracle":
        return OracleCritic()
    from visual_erm.judge import GREEDY_SETTINGS, VisualERM

    settings = GREEDY_SETTINGS if args.judge_sampling == "greedy" else None
    return VisualERM.from_pretrained(args.judge, max_new_tokens=args.judge_max_new_tokens, settings=settings,
                                     batch_size=args.batch_size, seed=args.seed)


# ---------------------------------------------------------------- output folder


def task_folder(index: int, task) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", task.id).strip("_")[:60]
    return os.path.join("tasks", f"{index:04d}_{slug}")


def write_round_files(out: str, folder: str, task, attempt) -> dict:
    """Code (or raw answer), rendering and critique of one revised attempt; returns their relative paths."""
    os.makedirs(os.path.join(out, folder), exist_ok=True)
    stem = os.path.join(folder, f"round_{attempt.round}")
    files = {}
    if attempt.code is not None:
        files["code"] = f"{stem}.{EXTENSIONS[task.kind]}"
        _write(os.path.join(out, files["code"]), attempt.code)
    files["answer"] = f"{stem}.answer.txt"
    _write(os.path.join(out, files["answer"]), attempt.completion)
    if attempt.render is not None and attempt.render.image is not None:
        files["image"] = f"{stem}.png"
        attempt.render.image.save(os.path.join(out, files["image"]))
    files["critique"] = f"{stem}.critique.json"
    row = attempt.to_row()
    _write(os.path.join(out, files["critique"]), json.dumps(
        {k: row[k] for k in ("critique", "feedback", "reward", "metrics", "render_error", "render_message")},
        indent=1, ensure_ascii=False))
    return files


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _cell(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def summary_markdown(summary: dict) -> str:
    """One row per round plus the kept answers: mean reward, render rate, per-kind reward and headline metric."""
    kinds = list(summary["headline"])
    head = ["round", "reward", "render rate", "done"] + [
        f"{kind} {label}" for kind in kinds for label in ("reward", summary["headline"][kind])]
    lines = [f"## Reflection: {summary['tasks']} tasks, keep={summary['keep']}, "
             f"{summary['improved']} improved over round 0", "",
             "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for label, row in [(str(r["round"]), r) for r in summary["rounds"]] + [(f"final ({summary['keep']})",
                                                                            summary["final"])]:
        cells = [label, _cell(row.get("reward_mean")), _cell(row.get("render_rate")), _cell(row.get("done"))]
        for kind in kinds:
            cells += [_cell(row.get(f"{kind}/reward_mean")), _cell(row.get(f"{kind}/{HEADLINE[kind]}"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:4px;vertical-align:top;font-size:12px}img{max-width:220px;max-height:220px;display:block;
background:#fff}.kept{outline:3px solid #2a7}pre{white-space:pre-wrap;max-width:320px;max-height:240px;
overflow:auto;font-size:11px}.err{color:#b22}"""


def _attempt_cell(task, attempt, files: dict | None, kept: bool) -> str:
    parts = [f"<b>reward {attempt.reward:.3f}</b>"]
    metric = attempt.metrics.get(HEADLINE[task.kind])
    if metric is not None:
        parts.append(f"{HEADLINE[task.kind]} {metric:.3f}")
    if not attempt.revised:
        parts.append("<i>done: answer unchanged</i>")
    elif files and "image" in files:
        parts.append(f'<img src="{html.escape(files["image"])}" alt="round {attempt.round}">')
    else:
        parts.append(f'<span class="err">{html.escape(attempt.render_error or "no image")}</span>')
    if attempt.revised:
        title = "critique" if attempt.critique is not None else "feedback"
        parts.append(f"<details><summary>{title}</summary><pre>{html.escape(attempt.feedback or 'no discrepancy')}"
                     "</pre></details>")
        parts.append(f"<details><summary>code</summary><pre>{html.escape(attempt.code or attempt.completion)}"
                     "</pre></details>")
    return f'<td class="{"kept" if kept else ""}">' + "<br>".join(parts) + "</td>"


def report_html(trajectories: Sequence[Trajectory], summary: dict, files: list[list[dict | None]],
                references: list[str]) -> str:
    """Summary table, then one row per task: its reference and each round's rendering side by side."""
    n_rounds = len(summary["rounds"])
    head = "".join(f"<th>round {r}</th>" for r in range(n_rounds))
    rows = []
    for trajectory, task_files, reference in zip(trajectories, files, references):
        task, kept = trajectory.task, trajectory.final_index(summary["keep"])
        cells = "".join(_attempt_cell(task, a, f, i == kept)
                        for i, (a, f) in enumerate(zip(trajectory.attempts, task_files)))
        rows.append(f"<tr><td>{html.escape(task.id)}<br>{task.kind}</td>"
                    f'<td><img src="{html.escape(reference)}" alt="reference"></td>{cells}</tr>')
    table = summary_markdown(summary).splitlines()
    lines = [line for line in table[2:] if line.startswith("|") and "---" not in line]
    summary_rows = "".join(
        "<tr>" + "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>" for c in line.strip("|").split("|")) + "</tr>"
        for tag, line in zip(["th"] + ["td"] * len(lines), lines))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Reflection report</title><style>{_CSS}"
            f"</style></head><body><h2>{html.escape(table[0].lstrip('# '))}</h2><table>{summary_rows}</table>"
            f"<h2>Tasks</h2><p>Outlined: the kept answer (keep={summary['keep']}).</p>"
            f"<table><tr><th>task</th><th>reference</th>{head}</tr>{''.join(rows)}</table></body></html>")


def write_outputs(out: str, trajectories: Sequence[Trajectory], keep: str) -> dict:
    """Every round's files, rounds.jsonl, summary.json / summary.md and report.html; returns the summary."""
    os.makedirs(out, exist_ok=True)
    summary = summarize(trajectories, keep)
    files, references = [], []
    with open(os.path.join(out, "rounds.jsonl"), "w", encoding="utf-8") as rounds:
        for index, trajectory in enumerate(trajectories):
            task = trajectory.task
            folder = task_folder(index, task)
            os.makedirs(os.path.join(out, folder), exist_ok=True)
            references.append(os.path.join(folder, "reference.png"))
            task.reference_image.save(os.path.join(out, references[-1]))
            task_files = []
            kept = trajectory.final_index(keep)
            for i, attempt in enumerate(trajectory.attempts):
                task_files.append(write_round_files(out, folder, task, attempt) if attempt.revised else None)
                row = dict(attempt.to_row(), id=task.id, kind=task.kind, kept=i == kept)
                rounds.write(json.dumps(row, ensure_ascii=False) + "\n")
            files.append(task_files)
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    _write(os.path.join(out, "summary.md"), summary_markdown(summary))
    _write(os.path.join(out, "report.html"), report_html(trajectories, summary, files, references))
    return summary


def run(args: flags.FlagValues, pool) -> dict:
    tasks = load_tasks(args.data, args.kind, args.n, params=json.loads(args.source_params), pool=pool)
    if not tasks:
        raise SystemExit(f"no {args.kind} tasks in {args.data!r}")
    policy, critic = make_policy(args), make_critic(args)

    def progress(round_, trajectories):
        rewards = [t.attempts[-1].reward for t in trajectories]
        log.info("round %d: mean reward %.4f", round_, sum(rewards) / len(rewards))

    trajectories = reflect(tasks, policy, critic, pool, rounds=args.rounds, timeout_s=args.timeout_s,
                           progress=progress)
    summary = write_outputs(args.out, trajectories, args.keep)
    print(summary_markdown(summary))
    return summary


def main(argv: Sequence[str] | None = None, *, pool=None) -> dict:
    """Parse `argv` and run; `pool`: a running render.RenderPool to use (else one is started)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if pool is not None:
        return run(args, pool)
    import render

    with render.RenderPool(workers=args.workers, timeout_s=args.timeout_s,
                           allow_weak_sandbox=args.allow_weak_sandbox) as own:
        return run(args, own)


if __name__ == "__main__":
    main(sys.argv[1:])
