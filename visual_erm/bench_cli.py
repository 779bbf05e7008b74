"""Score a judge on VC-RewardBench (a local copy) or on our synthetic set.

    python -m visual_erm.bench --judge=oracle|none|random|visual_erm|pred_json... \
        [--data=PATH|shapes] [--n=300] [--checkpoint=DIR] [--greedy] [--max_new_tokens=4096]
        [--mode=official|per_error] [--out=metrics.json]

Without --data, the synthetic set is built (once) under ./vc_rewardbench_synthetic;
`--data=shapes` builds (once) the main job's held-out single-shape set under
./vc_rewardbench_shapes (visual_erm/shapes_data.py).
`--judge=pred_json...` scores a judge output cached in the items under that key.
Scores use the official evaluator's formulas by default (`visual_erm.bench_official`) with the
deterministic matcher (an LLM matcher needs a model endpoint: `matching.LLMMatcher` in code).
Items are loaded as the official scorer reads them: a human error of a type not allowed for the
item's kind is dropped, the item kept.
"""
from __future__ import annotations

import argparse
import json
import random

from visual_erm import bench_data, bench_score, bench_synth
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
    from visual_erm.bench_shapes import constant_critique

    constant = constant_critique(items)
    return {item.id: constant for item in items}


def judge_oracle(items, **_) -> dict:
    """The exact labels: scores 1.0 by construction on the synthetic set."""
    return {item.id: item.reference.to_dict() for item in items}


def judge_visual_erm(items, checkpoint: str | None = None, greedy: bool = False, max_new_tokens: int = 4096,
                     **_) -> dict:
    """Visual-ERM from a checkpoint directory, batched through the sampler (published sampling, or greedy)."""
    if not checkpoint:
        raise SystemExit("--judge=visual_erm needs --checkpoint=DIR")
    from visual_erm.judge import GREEDY_SETTINGS, VisualERM

    judge = VisualERM.from_pretrained(checkpoint, settings=GREEDY_SETTINGS if greedy else None,
                                      max_new_tokens=max_new_tokens)
    pairs = [item.images() for item in items]  # from the image files, or the bytes of a TFDS split
    critiques = judge.critique([item.kind for item in items], [ref for ref, _ in pairs], [cand for _, cand in pairs])
    return {item.id: critique.to_dict() if critique.valid else "" for item, critique in zip(items, critiques)}


JUDGES = {"none": judge_none, "random": judge_random, "constant": judge_constant, "oracle": judge_oracle,
          "visual_erm": judge_visual_erm}


def score(judge: str, data: str, checkpoint: str | None = None, greedy: bool = False, mode: str = "official",
          max_new_tokens: int = 4096) -> dict:
    loaded = bench_data.load_bench(data, require_images=judge == "visual_erm", off_list_errors="drop")
    if judge.startswith("pred_json"):
        result = bench_score.evaluate_items(loaded.items, judge, mode=mode)
    else:
        outputs = JUDGES[judge](loaded.items, checkpoint=checkpoint, greedy=greedy, max_new_tokens=max_new_tokens)
        result = bench_score.evaluate_items(loaded.items, outputs, mode=mode)
        result["outputs"] = outputs
    result["item_errors"] = [str(e) for e in loaded.errors] + result["item_errors"]
    return result


def score_shapes(judge: str, result: dict, ranking: str, bench_items, **judge_args) -> dict:
    """`visual_erm.bench_shapes` measures of `judge` (its bench outputs in `result`, the ranking pairs
    judged here); the constant judge keeps the bench's constant on the ranking pairs too."""
    from visual_erm import bench_shapes

    ranking_items = bench_data.load_bench(ranking, require_images=judge == "visual_erm").items
    if judge == "constant":
        constant = bench_shapes.constant_critique(bench_items)
        ranking_outputs = {item.id: constant for item in ranking_items}
    else:
        ranking_outputs = JUDGES[judge](ranking_items, **judge_args)
    return bench_shapes.measures(bench_items, result["outputs"], ranking_items, ranking_outputs)


def format_row(name: str, result: dict) -> str:
    overall = result["overall"]
    parts = [f"{name:>12}", f"F1 hard {overall['hard']['f1']:.3f}", f"soft {overall['soft']['f1']:.3f}",
             f"P {overall['soft']['precision']:.3f}", f"R {overall['soft']['recall']:.3f}",
             f"severity r {result['severity_pearson']:.3f}",
             f"parse rate {1 - result['n_invalid_predictions'] / max(result['n_items'], 1):.3f}"]
    parts += [f"{kind} {block['soft']['f1']:.3f}" for kind, block in sorted(result["by_kind"].items())]
    return "  ".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", default="oracle,random,none,constant")
    parser.add_argument("--data", default=None)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--greedy", action="store_true", help="greedy judge decoding (tiny judges)")
    parser.add_argument("--mode", default="official", choices=bench_score.MODES, help="scoring formulas")
    parser.add_argument("--max_new_tokens", type=int, default=4096, help="longest critique a judge may write")
    args = parser.parse_args(argv)
    ranking = None
    if args.data == "shapes":
        from visual_erm import bench_shapes, shapes_data

        data = shapes_data.build_bench("vc_rewardbench_shapes", args.n)
        ranking = shapes_data.build_ranking("vc_rewardbench_shapes", max(args.n // 2, 1))
        bench_items = bench_data.load_bench(data).items
    else:
        data = args.data or bench_synth.build("vc_rewardbench_synthetic", args.n)
    results = {}
    for judge in args.judge.split(","):
        results[judge] = score(judge, data, args.checkpoint, args.greedy, args.mode, args.max_new_tokens)
        print(format_row(judge, results[judge]))
        if ranking is not None and not judge.startswith("pred_json"):
            results[judge]["shapes"] = score_shapes(judge, results[judge], ranking, bench_items,
                                                    checkpoint=args.checkpoint, greedy=args.greedy,
                                                    max_new_tokens=args.max_new_tokens)
            print(bench_shapes.format_measures(judge, results[judge]["shapes"]))
        errors = results[judge]["item_errors"]
        if errors:
            print(f"{'':>12}  {len(errors)} item errors, e.g. {errors[0]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
