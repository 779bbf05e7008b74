"""Task metrics of a policy's (or a predictions file's) code over a dataset (rl/metrics.py).

    python -m launch.evaluate --kind=chart|table|svg|all --data=NAME[:PATH] \
        [--predictions=preds.jsonl | --policy=HF_DIR] --out=DIR [--limit=N]

`--data` names a task source (`rl.task_sources`): ``synthetic`` (the seeded generators, `--limit` seeds per
kind), or ``chartmimic``, ``plot2code``, ``pubtabnet``, ``starvector``, ``icons``, ``shapes`` with
their local path after the colon (more loader options as JSON in `--source_params`). Predictions
are JSON lines ``{"id": task id, "completion": text}``; a task without one scores as a failure
(counted in ``missing_predictions``), lines for other ids are ignored. `--policy` instead
generates greedily with a Hugging Face Qwen3-VL directory (policy.load_pretrained, Processor,
Sampler) and writes those completions to ``DIR/predictions.jsonl``. Writes ``metrics.json``
(per-kind means in [0, 1]), ``metrics.md`` and ``samples.jsonl`` (one row per task) to `--out`
and prints the tables.
"""
from __future__ import annotations

import concurrent.futures
import json
import math
import os
import sys
from collections.abc import Sequence

import tqdm
from absl import flags

from policy import cli
from rl.metrics import LOWER_IS_BETTER, MAX_METRIC_TEDS_NODES, METRICS, METRICS_BY_FAMILY, score_predictions, summarize
from rl.task_mix import SOURCE_NAMES, build_source
from rl.task_sources import LoadReport

KIND_CHOICES = ("chart", "table", "svg", "all")
NEEDS_PATH = ("icons", "chartmimic", "plot2code", "pubtabnet", "starvector")  # local copies; the rest are generated

FLAGS = flags.FlagValues()
flags.DEFINE_enum("kind", "all", KIND_CHOICES, "task kind to score", flag_values=FLAGS)
flags.DEFINE_string("data", None, f"source NAME or NAME:PATH; names: {', '.join(SOURCE_NAMES)} "
                    f"({', '.join(NEEDS_PATH)} need the PATH of their local copy)", flag_values=FLAGS)
flags.DEFINE_string("source_params", "{}", "extra loader options as a JSON object, e.g. '{\"split\": \"val\"}'",
                    flag_values=FLAGS)
flags.DEFINE_integer("limit", None, "at most this many tasks (synthetic: seeds per kind)", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("predictions", None, 'JSONL of {"id", "completion"} (or --policy)', flag_values=FLAGS)
flags.DEFINE_string("policy", None, "Hugging Face Qwen3-VL directory to generate with, greedily (or --predictions)",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "folder for metrics.json, metrics.md, samples.jsonl", flag_values=FLAGS)
flags.DEFINE_integer("workers", None, "render workers (default: CPU count)", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_float("timeout_s", 20.0, "per-render time limit", lower_bound=0.1, flag_values=FLAGS)
flags.DEFINE_bool("ticks", False, "count tick labels in the chart text F1", flag_values=FLAGS)
flags.DEFINE_integer("teds_max_nodes", MAX_METRIC_TEDS_NODES, "larger differing tables are not scored", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer("max_new_tokens", 2048, "longest completion --policy writes", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 8, "prompts per --policy generation call", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("allow_weak_sandbox", False, "render even where the sandbox is incomplete (no user namespaces, "
                  "as in Colab): one warning names what is missing", flag_values=FLAGS)
flags.mark_flags_as_required(["data", "out"], flag_values=FLAGS)


def parse_args(argv: Sequence[str] | None = None) -> flags.FlagValues:
    """Parse and check every value before any task is loaded (errors name the flag and what is allowed)."""
    args = cli.parse(FLAGS, argv, __doc__)
    name, _, path = args.data.partition(":")
    cli.check(name in SOURCE_NAMES, f"--data={args.data}: unknown data source {name!r}; allowed: "
              f"{', '.join(SOURCE_NAMES)} (NAME or NAME:PATH)")
    params = cli.json_object("source_params", args.source_params)
    path = path or params.get("path", "")
    cli.check(name not in NEEDS_PATH or bool(path),
              f"--data={args.data}: {name} is read from a local copy: give its path, --data={name}:PATH")
    cli.check(not path or os.path.exists(path), f"--data={args.data}: {path} does not exist")
    cli.check((args.predictions is None) != (args.policy is None),
              "give exactly one of --predictions=FILE (completions to score) and --policy=HF_DIR (generate them)")
    cli.check(args.predictions is None or os.path.isfile(args.predictions),
              f"--predictions={args.predictions}: no such file")
    cli.check(args.policy is None or os.path.exists(os.path.join(args.policy, "config.json")),
              f"--policy={args.policy}: no config.json there (expected a Hugging Face Qwen3-VL directory)")
    return args


def load_tasks(data: str, kind: str, *, limit: int | None, params: dict, pool,
               report: LoadReport | None = None) -> list:
    """RLTasks of `kind` ("all": every kind) from the source `data` ("NAME" or "NAME:PATH")."""
    name, _, path = data.partition(":")
    if name not in SOURCE_NAMES:
        raise ValueError(f"unknown data source {name!r}; expected one of {SOURCE_NAMES} (NAME or NAME:PATH)")
    if name in NEEDS_PATH and not (path or params.get("path")):
        raise ValueError(f"data source {name!r} is read from a local copy: give its path as {name}:PATH")
    params = dict(params)
    if path:
        params["path"] = path
    if name == "synthetic":
        params.setdefault("kinds", list(METRICS) if kind == "all" else [kind])
        params.setdefault("stop", params.get("start", 0) + (limit or 10))
        limit = None if limit is None else limit * len(params["kinds"])
    source = build_source({"name": name, "params": params}, renderer=pool, report=report)
    tasks: list = []
    chunk = 4 * getattr(pool, "workers", 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=chunk) as threads:  # sources render references
        for start in range(0, len(source), chunk):
            for task in threads.map(source.__getitem__, range(start, min(start + chunk, len(source)))):
                if task is not None and kind in ("all", task.kind) and (limit is None or len(tasks) < limit):
                    tasks.append(task)
            if limit is not None and len(tasks) >= limit:
                break
    return tasks


def read_predictions(path: str) -> dict[str, str]:
    """id -> completion from a JSONL file; a malformed line or a repeated id is an error."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not (isinstance(row, dict) and isinstance(row.get("id"), str)
                    and isinstance(row.get("completion"), str)):
                raise ValueError(f"{path}:{number}: expected {{\"id\": str, \"completion\": str}}")
            if row["id"] in out:
                raise ValueError(f"{path}:{number}: id {row['id']!r} appears twice")
            out[row["id"]] = row["completion"]
    return out


def generate_completions(policy_dir: str, tasks: Sequence, *, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy completions of a Hugging Face Qwen3-VL checkpoint for the tasks' policy prompts."""
    from policy import Processor, Sampler, SamplingParams, load_pretrained
    from rl.rollout import policy_messages

    _, model = load_pretrained(policy_dir)
    processor = Processor.from_pretrained(policy_dir)
    tokenizer = processor.tokenizer
    stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    sampler = Sampler(model, pad_id=processor.pad_token_id, stop_ids=stops)
    params = SamplingParams(temperature=0.0, suppress_ids=(processor.image_token_id, processor.vision_start_token_id))
    texts: list[str] = []
    for start in tqdm.trange(0, len(tasks), batch_size, unit="batch", desc=f"generating with {policy_dir}"):
        batch = processor([policy_messages(t) for t in tasks[start : start + batch_size]], padding_side="left")
        out = sampler.generate(batch["input_ids"], batch["attention_mask"], batch["pixel_values"],
                               batch["image_grid_thw"], max_new_tokens=max_new_tokens, params=params)
        texts += [processor.decode(tokens[:length]) for tokens, length in zip(out.tokens, out.lengths)]
    return texts


def _cell(name: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.4f}" if name in LOWER_IS_BETTER else f"{100 * value:.1f}"


def markdown(summary: dict, header: str = "") -> str:
    """One Markdown table per kind: F1s, rates, TEDS and SSIM in percent; NED and MSE raw (lower is better)."""
    lines = [header, ""] if header else []
    for kind, entry in summary.items():
        names = METRICS_BY_FAMILY[kind]
        labels = [f"{n} (lower better)" if n in LOWER_IS_BETTER else f"{n} (%)" for n in names]
        lines += [f"### {kind} (n={entry['n']}, skipped={entry['skipped']})", "",
                  "| " + " | ".join(labels) + " |", "|" + "---:|" * len(names),
                  "| " + " | ".join(_cell(n, entry[n]) for n in names) + " |", ""]
    return "\n".join(lines)


def _write_jsonl(path: str, rows: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def evaluate(args: flags.FlagValues, pool) -> dict:
    """Load tasks, get completions, score them; write metrics.json, metrics.md, samples.jsonl."""
    os.makedirs(args.out, exist_ok=True)
    report = LoadReport()
    tasks = load_tasks(args.data, args.kind, limit=args.limit, params=json.loads(args.source_params), pool=pool,
                       report=report)
    if not tasks:
        raise SystemExit(f"no {args.kind} tasks in {args.data!r}: {report.summary()}")
    missing = 0
    if args.policy:
        completions = generate_completions(args.policy, tasks, max_new_tokens=args.max_new_tokens,
                                           batch_size=args.batch_size)
        _write_jsonl(os.path.join(args.out, "predictions.jsonl"),
                     [{"id": t.id, "completion": c} for t, c in zip(tasks, completions)])
    else:
        predictions = read_predictions(args.predictions)
        completions = [predictions.get(t.id, "") for t in tasks]
        missing = sum(t.id not in predictions for t in tasks)
    rows = score_predictions(tasks, completions, pool, ticks=args.ticks, max_nodes=args.teds_max_nodes,
                             timeout_s=args.timeout_s)
    summary = summarize(rows)
    result = {"data": args.data, "kind": args.kind, "predictions": args.predictions, "policy": args.policy,
              "tasks": len(tasks), "missing_predictions": missing, "load_errors": report.counts,
              "metrics": summary}
    _write_jsonl(os.path.join(args.out, "samples.jsonl"), rows)
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    header = (f"## {args.data}: {len(tasks)} tasks, {missing} without a prediction, "
              f"{len(report)} not loadable")
    text = markdown(summary, header)
    with open(os.path.join(args.out, "metrics.md"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    print(text)
    return result


def main(argv: Sequence[str] | None = None, *, pool=None) -> dict:
    """Parse `argv` and evaluate; `pool`: a running render.RenderPool to use (else one is started)."""
    args = parse_args(argv)
    if pool is not None:
        return evaluate(args, pool)
    import render

    with render.RenderPool(workers=args.workers, timeout_s=args.timeout_s,
                           allow_weak_sandbox=args.allow_weak_sandbox) as own:
        return evaluate(args, own)


if __name__ == "__main__":
    main(sys.argv[1:])
