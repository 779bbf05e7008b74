"""Render throughput: the sandboxed pool against two peers on the same charts.

    python bench/render_bench.py [--n=200] [--workers=2] [--rounds=5] [--fresh=8] [--baseline=DIR]

Peers, run in this same script (machines are noisy; compare ratios):
  * process-per-sample: one fresh `python` per chart (what the published code
    does), with the same concurrency as the pool;
  * in-process: unsandboxed rendering in this process, one chart after another.
  * with --baseline DIR (another checkout of this repo, e.g. `git worktree add DIR <commit>`):
    a second pool whose zygotes run DIR's render/ package, raced in the same rounds, to
    compare a change against its parent on a machine too loaded for separate runs.
Sandbox overhead is the single-worker pool against in-process rendering. The
contenders take turns on the same charts, round after round, and the ratios
are medians over rounds: a burst of load on a shared machine hits one round's
contenders alike instead of one contender.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags

import render
from policy import cli
from render import pool as pool_module
from render.dispatch import render_in_process

KINDS = ("bar", "line", "scatter", "pie", "hist", "barh")


def chart_code(seed: int) -> str:
    """A small realistic matplotlib script, as a model would write it."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    n = rng.randint(3, 8)
    values = [round(rng.uniform(1, 100), 1) for _ in range(n)]
    labels = [f"C{i}" for i in range(n)]
    body = {
        "bar": f"ax.bar({labels}, {values}, color='tab:blue')",
        "barh": f"ax.barh({labels}, {values}, color='tab:green')",
        "line": f"ax.plot(range({n}), {values}, marker='o')\nax.grid(True)",
        "scatter": f"ax.scatter(range({n}), {values}, s=40, c='crimson')",
        "pie": f"ax.pie({values}, labels={labels}, autopct='%1.0f%%')",
        "hist": f"ax.hist({values * 5}, bins=8, color='gray')",
    }[kind]
    return (
        "import matplotlib.pyplot as plt\n"
        f"fig, ax = plt.subplots(figsize=({rng.choice([6, 7, 8])}, {rng.choice([4, 5])}))\n"
        f"{body}\nax.set_title('Chart {seed}: {kind}')\nplt.tight_layout()\nplt.show()\n"
    )


def pool_rate(pool, codes) -> float:
    start = time.perf_counter()
    results = pool.map("chart", codes)
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return len(codes) / elapsed


def in_process_rate(codes) -> float:
    start = time.perf_counter()
    for code in codes:
        assert render_in_process("chart", code).ok
    return len(codes) / (time.perf_counter() - start)


def process_per_sample_rate(codes, workers: int) -> float:
    folder = tempfile.mkdtemp(prefix="render-bench-")

    def run_one(index_code):
        index, code = index_code
        path = os.path.join(folder, f"sample_{index}.py")
        with open(path, "w") as f:
            f.write("import matplotlib\nmatplotlib.use('Agg')\n" + code.replace("plt.show()", "")
                    + f"\nplt.savefig({path + '.png'!r})\n")
        subprocess.run([sys.executable, path], check=True, timeout=60, capture_output=True)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as executor:
        list(executor.map(run_one, enumerate(codes)))
    return len(codes) / (time.perf_counter() - start)


@contextlib.contextmanager
def zygotes_from(package_root: str):
    """Pools made inside start their zygotes from another checkout's render/ package."""
    own = pool_module._PACKAGE_ROOT
    pool_module._PACKAGE_ROOT = os.path.abspath(package_root)
    try:
        yield
    finally:
        pool_module._PACKAGE_ROOT = own


def zygote_pids(pool) -> list[int]:
    return [zygote.process.pid for zygote in pool._zygotes if zygote is not None]


def _summary(values) -> str:
    return f"{statistics.median(values):7.2f}  (rounds: {min(values):.2f} .. {max(values):.2f})"


FLAGS = flags.FlagValues()
flags.DEFINE_integer("n", 200, "charts", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("workers", 2, "pool workers", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("rounds", 5, "interleaved rounds", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("fresh", 8, "charts per round for the slow process-per-sample peer", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("baseline", None, "another checkout whose render/ a second pool runs, in the same rounds",
                    flag_values=FLAGS)


def main() -> None:
    args = cli.parse(FLAGS, None, __doc__)
    codes = [chart_code(seed) for seed in range(args.n)]
    render_in_process("chart", codes[0])  # warm imports, as the pool's workers are
    start = time.perf_counter()
    pool = render.RenderPool(workers=args.workers, timeout_s=30)
    startup = time.perf_counter() - start
    single = render.RenderPool(workers=1, timeout_s=30)
    baseline = None
    if args.baseline:
        with zygotes_from(args.baseline):
            baseline = render.RenderPool(workers=args.workers, timeout_s=30)
        baseline_zygotes = zygote_pids(baseline)
    rates = {"pool": [], "pool_one": [], "inproc": [], "fresh": [], "baseline": []}
    try:
        # Interleaved rounds: a burst of load on this (shared, noisy) machine hits every
        # contender of a round alike, and the per-round ratios are what we report.
        for chunk in (codes[i::args.rounds] for i in range(args.rounds)):
            rates["pool"].append(pool_rate(pool, chunk))
            if baseline is not None:
                rates["baseline"].append(pool_rate(baseline, chunk))
            rates["pool_one"].append(pool_rate(single, chunk))
            rates["inproc"].append(in_process_rate(chunk))
            rates["fresh"].append(process_per_sample_rate(chunk[: args.fresh], args.workers))
        # A zygote restarted mid-run would have started from this checkout, not the baseline.
        assert baseline is None or zygote_pids(baseline) == baseline_zygotes, "a baseline zygote was restarted"
    finally:
        pool.close()
        single.close()
        if baseline is not None:
            baseline.close()
    def ratio(a, b):
        return [x / y for x, y in zip(rates[a], rates[b])]

    overhead = [100 * (x - 1) for x in ratio("inproc", "pool_one")]
    print(f"charts: {args.n} in {args.rounds} interleaved rounds (process-per-sample peer: {args.fresh} a round); "
          f"cores: {os.cpu_count()}; medians, then the range over rounds")
    print(f"pool ({args.workers} workers)             {_summary(rates['pool'])} images/s   "
          f"(start-up {startup:.1f} s, not counted)")
    print(f"pool (1 worker)                 {_summary(rates['pool_one'])} images/s")
    print(f"process per sample ({args.workers} at once)  {_summary(rates['fresh'])} images/s")
    print(f"in-process, unsandboxed         {_summary(rates['inproc'])} images/s")
    print(f"pool / process-per-sample       {_summary(ratio('pool', 'fresh'))} x   (target >= 10)")
    print(f"sandbox overhead (1-worker pool vs in-process) {_summary(overhead)} %   (target <= 25)")
    print(f"pool ({args.workers} workers) / in-process     {_summary(ratio('pool', 'inproc'))} x")
    if baseline is not None:
        print(f"baseline pool ({args.baseline}) / in-process {_summary(ratio('baseline', 'inproc'))} x")
        print(f"pool / baseline pool            {_summary(ratio('pool', 'baseline'))} x")


if __name__ == "__main__":
    main()
