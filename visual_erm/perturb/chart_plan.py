"""What both chart edit paths share: the Plan contract, claim conflicts, plan choice and value/text wording.

The spec path (`visual_erm.perturb.chart`) and the ast path
(`visual_erm.perturb.chart_ast`) each turn an edit type into a `Plan`; this
module picks compatible plans and makes the new values and texts both paths
describe, so the two are worded alike and the ast path needs nothing from the spec path.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from visual_erm.perturb.base import Edit, NotApplicable

MAX_EDITS = 4
SWAP_WORDS = ("Growth", "Demand", "Output", "Volume", "Income", "Usage", "Traffic", "Costs", "Budget", "Orders")


@dataclasses.dataclass(frozen=True)
class Plan:
    edit: Edit
    claims: frozenset  # "p/title", "p/series/<name>", ...; "p/*" claims the whole panel
    apply: Callable  # ChartSpec -> ChartSpec (spec path); mutates an ast.Module (ast path)


def conflict(a: frozenset, b: frozenset) -> bool:
    """Two claim sets touch a common element ("p/*" touches everything in panel p)."""
    def wide(x, y):
        return x.endswith("/*") and y.startswith(x[:-1])

    return any(x == y or wide(x, y) or wide(y, x) for x in a for y in b)


def choose_plans(registry: dict, reference, rng: random.Random, n: int) -> list[Plan]:
    """Up to n plans of distinct types with disjoint claims, types tried in random order."""
    plans, claims, names = [], frozenset(), sorted(registry)
    rng.shuffle(names)
    for name in names:
        if len(plans) >= n:
            break
        try:
            plan = registry[name](reference, rng)
        except NotApplicable:
            continue
        if not conflict(plan.claims, claims):
            plans.append(plan)
            claims |= plan.claims
    return plans


def _decimals(value) -> int:
    return 0 if isinstance(value, int) else max(1, len(f"{float(value):.6f}".rstrip("0").split(".")[1]))


def like(example, value):
    """`value` rounded to the precision of `example` (ints stay ints)."""
    return int(round(value)) if isinstance(example, int) else round(value, _decimals(example))


def new_value(rng: random.Random, old, values, limits=None, positive=False):
    """A clearly different value of the same precision; stays inside fixed axis limits."""
    decimals, span = max(_decimals(v) for v in values), max(abs(v) for v in values) or 1.0
    for _ in range(20):
        factor = rng.uniform(0.3, 0.6) if limits or rng.random() < 0.5 else rng.uniform(1.5, 2.0)
        new = old * factor if old > 0 else old + span * rng.uniform(0.4, 0.8)
        new = int(round(new)) if decimals == 0 else round(new, decimals)
        if abs(new - old) >= 0.25 * max(abs(old), 0.2 * span) and (new > 0 or not positive):
            return new
    raise NotApplicable("no clearly different value at this precision")


def alter_text(text: str, rng: random.Random, avoid=()) -> str:
    """A plausible different text: another year, another word, another letter in 'Team A'."""
    tokens = text.split(" ")
    options = [k for k, t in enumerate(tokens) if (t.isdigit() and len(t) == 4) or (t.isalpha() and len(t) >= 4)
               or (len(t) == 1 and t.isupper())]  # fmt: skip
    rng.shuffle(options)
    for k in options:
        t = tokens[k]
        if t.isdigit():
            new = str(int(t) + rng.choice((-3, -2, -1, 1, 2, 3)))
        elif len(t) == 1:
            new = chr((ord(t) - 65 + rng.randint(1, 5)) % 26 + 65)
        else:
            word = rng.choice([w for w in SWAP_WORDS if w.lower() != t.lower()])
            new = word if t[0].isupper() else word.lower()
        out = " ".join(tokens[:k] + [new] + tokens[k + 1 :])
        if out != text and out not in avoid:
            return out
    return text + " (est.)"


def typo(word: str, rng: random.Random) -> str:
    letters = [k for k, ch in enumerate(word) if ch.isalpha()]
    if len(letters) < 3:
        raise NotApplicable("too short for a typo")
    for _ in range(20):
        k, op = rng.choice(letters), rng.randrange(3)
        if op == 0 and k + 1 < len(word) and word[k + 1].isalpha():
            new = word[:k] + word[k + 1] + word[k] + word[k + 2 :]
        elif op == 1 and len(word) >= 4:
            new = word[:k] + word[k + 1 :]
        else:
            new = word[:k] + word[k] + word[k:]
        if new.lower() != word.lower():
            return new
    raise NotApplicable("no typo found")
