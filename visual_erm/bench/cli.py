"""Score a judge on VC-RewardBench (a local copy) or on our synthetic set.

    python -m visual_erm.bench --judge=oracle|none|random|visual_erm|pred_json... \
        [--data=PATH|tfds:...|shapes] [--n=300] [--checkpoint=DIR] [--greedy] [--max_new_tokens=4096]
        [--mode=official|per_error] [--out=metrics.json] [--allow_weak_sandbox]

Without --data, the synthetic set is built (once, with a progress bar) under the cache directory
(`policy.cli.cache_dir`: $VISUAL_ERM_CACHE, else ~/.cache/visual-erm-jax) in
vc_rewardbench_synthetic/; `--data=shapes` builds the main job's held-out single-shape set there in
vc_rewardbench_shapes/ (visual_erm/bench/shapes.py). A cached set is reused; the first `--n` items of
any set are scored. `--judge=pred_json...` scores a judge output cached in the items under that key.
Scores use the official evaluator's formulas by default (`visual_erm.bench.official`) with the
deterministic matcher (an LLM matcher needs a model endpoint: `matching.LLMMatcher` in code).
Items are loaded as the official scorer reads them: a human error of a type not allowed for the
item's kind is dropped, the item kept.
"""
from __future__ import annotations

import json
import os
import random

import tqdm
from absl import flags

from policy import cli
from visual_erm.bench import synth
from visual_erm.bench.data import load_bench
from visual_erm.bench.score import MODES, evaluate_items
from visual_erm.schema import CATEGORIES

_PLACES = {"chart": ["title", "legend", "x-axis", "y-axis", "bars", "line"],
           "table": ["header row", "row 2", "column 3", "last row"],
           "svg": ["circle", "top left shape", "text", "background"]}


def judge_none(items, **_) -> dict:
    """Says nothing is wrong: recall 0 wherever there are errors."""
    return {item.id: {"errors": []} for item in items}


def judge_random(items, seed: int = 0, **_) -> dict:
    """Plausible-looking but random errors: the floor any real judge must beat."""
    rng = random.Random(seed)
    outputs = {}
    for item in items:
        errors = []
        for _ in range(rng.randint(0, 3)):
            category = rng.choice(CATEGORIES[item.kind])
            place = rng.choice(_PLACES[item.kind])
            errors.append({"category": category, "severity": rng.randint(1, 3), "location": place,
                           "description": f"the {place} looks different ({category.replace('_', ' ')})"})
        outputs[item.id] = {"errors": errors}
    return outputs


def judge_constant(items, **_) -> dict:
    """One critique for every pair (the items' most frequent label): what a judge that ignores the
    images can reach; the baseline printed beside a judge."""
    from visual_erm.bench.shapes import constant_critique

    constant = constant_critique(items)
    return {item.id: constant for item in items}


def judge_oracle(items, **_) -> dict:
    """The exact labels: scores 1.0 by construction on the synthetic set."""
    return {item.id: item.reference.to_dict() for item in items}


def judge_visual_erm(items, checkpoint: str | None = None, greedy: bool = False, max_new_tokens: int = 4096,
                     **_) -> dict:
    """Visual-ERM from a checkpoint directory, batched through the sampler (published sampling, or greedy),
    with a progress bar over the items."""
    if not checkpoint:
        raise ValueError("judge 'visual_erm' needs a checkpoint directory (--checkpoint=DIR)")
    from visual_erm.judge import GREEDY_SETTINGS, VisualERM

    judge = VisualERM.from_pretrained(checkpoint, settings=GREEDY_SETTINGS if greedy else None,
                                      max_new_tokens=max_new_tokens)
    outputs = {}
    chunk = 4 * judge.batch_size
    with tqdm.tqdm(total=len(items), unit="item", desc=f"judging with {checkpoint}") as bar:
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            pairs = [item.images() for item in part]  # from the image files, or the bytes of a TFDS split
            critiques = judge.critique([item.kind for item in part], [ref for ref, _ in pairs],
                                       [cand for _, cand in pairs])
            outputs.update((item.id, critique.to_dict() if critique.valid else "")
                           for item, critique in zip(part, critiques))
            bar.update(len(part))
    return outputs


JUDGES = {"none": judge_none, "random": judge_random, "constant": judge_constant, "oracle": judge_oracle,
          "visual_erm": judge_visual_erm}


def check_judge(name: str) -> None:
    """A judge name `score` accepts; else a ValueError naming the allowed ones."""
    if name not in JUDGES and not name.startswith("pred_json"):
        raise ValueError(f"unknown judge {name!r}; allowed: {', '.join(JUDGES)}, or pred_json... (the key of a "
                         "judge output cached in the items)")


def score(judge: str, data: str, checkpoint: str | None = None, greedy: bool = False, mode: str = "official",
          max_new_tokens: int = 4096, n: int | None = None) -> dict:
    """Scores of `judge` on the items of `data` (the first `n` when given)."""
    check_judge(judge)
    loaded = load_bench(data, require_images=judge == "visual_erm", off_list_errors="drop")
    items = loaded.items[:n] if n is not None else loaded.items
    if judge.startswith("pred_json"):
        result = evaluate_items(items, judge, mode=mode)
    else:
        outputs = JUDGES[judge](items, checkpoint=checkpoint, greedy=greedy, max_new_tokens=max_new_tokens)
        result = evaluate_items(items, outputs, mode=mode)
        result["outputs"] = outputs
    result["item_errors"] = [str(e) for e in loaded.errors] + result["item_errors"]
    return result


def score_shapes(judge: str, result: dict, ranking: str, bench_items, **judge_args) -> dict:
    """`visual_erm.bench.shapes` measures of `judge` (its bench outputs in `result`, the ranking pairs
    judged here); the constant judge keeps the bench's constant on the ranking pairs too."""
    from visual_erm.bench import shapes

    ranking_items = load_bench(ranking, require_images=judge == "visual_erm").items
    if judge == "constant":
        constant = shapes.constant_critique(bench_items)
        ranking_outputs = {item.id: constant for item in ranking_items}
    else:
        ranking_outputs = JUDGES[judge](ranking_items, **judge_args)
    return shapes.measures(bench_items, result["outputs"], ranking_items, ranking_outputs)


def format_row(name: str, result: dict) -> str:
    overall = result["overall"]
    parts = [f"{name:>12}", f"F1 hard {overall['hard']['f1']:.3f}", f"soft {overall['soft']['f1']:.3f}",
             f"P {overall['soft']['precision']:.3f}", f"R {overall['soft']['recall']:.3f}",
             f"severity r {result['severity_pearson']:.3f}",
             f"parse rate {1 - result['n_invalid_predictions'] / max(result['n_items'], 1):.3f}"]
    parts += [f"{kind} {block['soft']['f1']:.3f}" for kind, block in sorted(result["by_kind"].items())]
    return "  ".join(parts)


FLAGS = flags.FlagValues()
flags.DEFINE_list("judge", ["oracle", "random", "none", "constant"], "judges to score, comma-separated: "
                  f"{', '.join(JUDGES)} or pred_json... (an output cached in the items)", flag_values=FLAGS)
flags.DEFINE_string("data", None, "benchmark: a .json/.jsonl file or folder, tfds:NAME:SPLIT@DIR, or 'shapes' "
                    "(default: the synthetic set, built once in the cache directory)", flag_values=FLAGS)
flags.DEFINE_integer("n", 300, "score the first N items (and build that many when building)", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("checkpoint", None, "Hugging Face directory of the visual_erm judge", flag_values=FLAGS)
flags.DEFINE_string("out", None, "also write every result to this JSON file", flag_values=FLAGS)
flags.DEFINE_bool("greedy", False, "greedy judge decoding (tiny judges)", flag_values=FLAGS)
flags.DEFINE_enum("mode", "official", MODES, "scoring formulas", flag_values=FLAGS)
flags.DEFINE_integer("max_new_tokens", 4096, "longest critique a judge may write", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("allow_weak_sandbox", False, "build sets even where the render sandbox is incomplete (no user "
                  "namespaces, as in Colab): one warning names what is missing", flag_values=FLAGS)


def _check_judges(names: list[str]) -> bool:
    for name in names:
        try:
            check_judge(name)
        except ValueError as e:
            raise flags.ValidationError(str(e)) from None
    return True


flags.register_validator("judge", _check_judges, flag_values=FLAGS)


def main(argv=None) -> dict:
    cli.parse(FLAGS, argv, __doc__)
    cli.check("visual_erm" not in FLAGS.judge or bool(FLAGS.checkpoint),
              "--judge=visual_erm needs --checkpoint=DIR (a Hugging Face judge directory)")
    cli.check(not FLAGS.checkpoint or os.path.exists(os.path.join(FLAGS.checkpoint, "config.json")),
              f"--checkpoint={FLAGS.checkpoint}: no config.json there (expected a Hugging Face model directory)")
    cli.check(FLAGS.data in (None, "shapes") or FLAGS.data.startswith("tfds:") or os.path.exists(FLAGS.data),
              f"--data={FLAGS.data}: no such file or folder (allowed: a VC-RewardBench .json/.jsonl file or folder, "
              "tfds:NAME:SPLIT@DIR, 'shapes', or nothing for the synthetic set)")
    ranking = None
    if FLAGS.data == "shapes":
        from visual_erm.bench import shapes

        data = shapes.build_bench(cli.cache_dir("vc_rewardbench_shapes"), FLAGS.n,
                                  allow_weak_sandbox=FLAGS.allow_weak_sandbox)
        ranking = shapes.build_ranking(cli.cache_dir("vc_rewardbench_shapes"), max(FLAGS.n // 2, 1),
                                       allow_weak_sandbox=FLAGS.allow_weak_sandbox)
        bench_items = load_bench(data).items[:FLAGS.n]
    else:
        data = FLAGS.data or synth.build(cli.cache_dir("vc_rewardbench_synthetic"), FLAGS.n,
                                         allow_weak_sandbox=FLAGS.allow_weak_sandbox)
    results = {}
    for judge in FLAGS.judge:
        results[judge] = score(judge, data, FLAGS.checkpoint, FLAGS.greedy, FLAGS.mode, FLAGS.max_new_tokens,
                               n=FLAGS.n)
        print(format_row(judge, results[judge]))
        if ranking is not None and not judge.startswith("pred_json"):
            results[judge]["shapes"] = score_shapes(judge, results[judge], ranking, bench_items,
                                                    checkpoint=FLAGS.checkpoint, greedy=FLAGS.greedy,
                                                    max_new_tokens=FLAGS.max_new_tokens)
            print(shapes.format_measures(judge, results[judge]["shapes"]))
        errors = results[judge]["item_errors"]
        if errors:
            print(f"{'':>12}  {len(errors)} item errors, e.g. {errors[0]}")
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return results

