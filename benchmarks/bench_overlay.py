"""Validate with an environment's overlay: 500 providers / 10,000 models, plus an overlay that
patches 1,000 of them, against validating the base alone (target: within 1.2x).

    python benchmarks/bench_overlay.py [--runs 5]

Both runs go through a project file (reconciler.yaml), so the only difference is the overlay.
Runs alternate; medians of wall time and of CPU time (user + system, workers included: on a
shared host the wall time also counts what other processes took).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from common import ROOT, reconciler, run_timed, table

sys.path.insert(0, ROOT)
from benchmarks.generate import generate, overlay  # noqa: E402

PROJECT = """apiVersion: reconciler/v1
kind: Project
paths: [base]
environments:
  plain: {}
  staging:
    overlays: [envs/staging]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="reconciler-bench-")
    try:
        generate(os.path.join(work, "base"), 500, 10_000, "files")
        patched = overlay(os.path.join(work, "envs", "staging"), 10_000, 1_000)
        with open(os.path.join(work, "reconciler.yaml"), "w") as fh:
            fh.write(PROJECT)
        runs: dict[str, list[tuple[float, float]]] = {"plain": [], "staging": []}
        for _ in range(args.runs):  # interleaved, so that a busy moment of a shared host hits both
            for env in runs:
                runs[env].append(run_timed(reconciler("validate", "--env", env), cwd=work))
        wall = {env: statistics.median(w for w, _ in times) for env, times in runs.items()}
        cpu = {env: statistics.median(c for _, c in times) for env, times in runs.items()}
        print(table("validate: 500 providers, 10,000 models, and an overlay", [
            ("overlay documents (patches)", str(patched)),
            ("validate, base alone (wall / CPU)", f"{wall['plain']:.2f} / {cpu['plain']:.2f} s"),
            ("validate, base + overlay (wall / CPU)", f"{wall['staging']:.2f} / {cpu['staging']:.2f} s"),
            ("overlay / base, wall (target <= 1.2)", f"{wall['staging'] / wall['plain']:.2f}x"),
            ("overlay / base, CPU (target <= 1.2)", f"{cpu['staging'] / cpu['plain']:.2f}x"),
        ]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
