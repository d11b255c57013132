"""The cron re-run: warm plan and apply against SQLite, against a cold validate, in one run.

    python benchmarks/bench_cache.py [--runs 5] [--providers 500] [--models 10000]

500 providers / 10,000 models (10,500 files), applied once into a SQLite store. Each round, in
fresh processes: a cold `validate --no-cache` (the reference) and a cold `plan --no-cache`; then,
with the cache emptied, `validate` filling it (a cold run with the cache on) and a `plan` that
records the no-change run; then the warm `plan` and warm `apply` (the no-op shortcut: nothing
changed); then one model file changed (display name): `plan` (one file parsed again, the rest
from the cache, then the store read and compared in full) and `validate`; and the file changed
back. Medians over the rounds; ratios to the same run's cold validate. The targets: warm plan and
warm apply <= 0.5 s and <= 0.25x cold validate; one changed file <= 0.35x; a cold run that fills
the cache no slower than one without it (<= 1.05x). CPU time (user + system, the process and
its workers) is printed beside wall time: on a shared machine the latter moves with the load.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import sys
import tempfile
import time

from common import ROOT, reconciler, run_timed, table

sys.path.insert(0, ROOT)
from benchmarks.generate import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--providers", type=int, default=500)
    parser.add_argument("--models", type=int, default=10_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="reconciler-bench-cache-")
    try:
        print(run(work, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: str, args: argparse.Namespace) -> str:
    data, cache_dir = os.path.join(work, "set"), os.path.join(work, "cache")
    generate(data, args.providers, args.models)
    env = {
        "RECONCILER_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "RECONCILER_CACHE_DIR": cache_dir,
        **{f"PROVIDER_{i:04d}_KEY_{s}": f"sk-bench-{i:04d}-{s}-0123456789abcdef"
           for i in range(args.providers) for s in "AB"},
    }
    url = "sqlite:///" + os.path.join(work, "store.db")
    run_timed(reconciler("apply", data, "--store", url, "--no-cache"), env)
    time.sleep(2.5)  # a store written in the last two seconds has no change token
    victim = os.path.join(data, "models", sorted(os.listdir(os.path.join(data, "models")))[0])
    with open(victim) as fh:
        original = fh.read()
    edited = original.replace("  display_name: Model ", "  display_name: Changed model ", 1)
    assert edited != original
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def timed(step: str, *argv: str, expect: int = 0) -> None:
        seconds, used = run_timed(reconciler(*argv), env, expect)
        wall.setdefault(step, []).append(seconds)
        cpu.setdefault(step, []).append(used)

    for round_ in range(1, args.runs + 1):
        print(f"round {round_} of {args.runs}", file=sys.stderr, flush=True)
        timed("cold validate (--no-cache)", "validate", data, "--no-cache")
        timed("cold plan (--no-cache)", "plan", data, "--store", url, "--no-cache")
        shutil.rmtree(cache_dir, ignore_errors=True)
        timed("cold validate, filling the cache", "validate", data)
        timed("plan, files cached, recording", "plan", data, "--store", url)
        timed("warm plan (nothing changed)", "plan", data, "--store", url, "--detailed-exitcode")
        timed("warm apply (nothing changed)", "apply", data, "--store", url)
        with open(victim, "w") as fh:
            fh.write(edited)
        timed("plan, one file changed", "plan", data, "--store", url, "--detailed-exitcode", expect=2)
        with open(victim, "w") as fh:
            fh.write(original)
        timed("validate, one file changed", "validate", data)
        with open(victim, "w") as fh:
            fh.write(edited)
        run_timed(reconciler("validate", data), env)  # the cache holds the edited file again
        with open(victim, "w") as fh:
            fh.write(original)

    median = {step: statistics.median(times) for step, times in wall.items()}
    median_cpu = {step: statistics.median(times) for step, times in cpu.items()}
    rows = [(step, f"{seconds:.2f} s (CPU {median_cpu[step]:.2f} s)") for step, seconds in median.items()]
    ratios = [
        ("warm plan / cold validate (<= 0.25)", "warm plan (nothing changed)"),
        ("warm apply / cold validate (<= 0.25)", "warm apply (nothing changed)"),
        ("plan, one file changed / cold validate (<= 0.35)", "plan, one file changed"),
        ("validate, one file changed / cold validate (<= 0.35)", "validate, one file changed"),
        ("cold validate filling / --no-cache (<= 1.05)", "cold validate, filling the cache"),
    ]
    cold, cold_cpu = median["cold validate (--no-cache)"], median_cpu["cold validate (--no-cache)"]
    rows += [(name, f"{median[step] / cold:.2f}x (CPU {median_cpu[step] / cold_cpu:.2f}x)") for name, step in ratios]
    title = (f"{args.providers} providers / {args.models} models, SQLite, median of {args.runs} rounds "
             "of fresh processes")
    return table(title, rows)


if __name__ == "__main__":
    main()
