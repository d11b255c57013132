"""Validate with an environment's overlay: 500 providers / 10,000 models, plus an overlay that
patches 1,000 of them, against validating the base alone (target: within 1.2x).

    python benchmarks/bench_overlay.py [--runs 5]

Both runs go through a project file (reconciler.yaml), so the only difference is the overlay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from common import ROOT, reconciler, table, time_command

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
        base = time_command(reconciler("validate", "--env", "plain"), args.runs, cwd=work)
        with_overlay = time_command(reconciler("validate", "--env", "staging"), args.runs, cwd=work)
        print(table("validate: 500 providers, 10,000 models, and an overlay", [
            ("overlay documents (patches)", str(patched)),
            ("validate, base alone", f"{base:.2f} s"),
            ("validate, base + overlay", f"{with_overlay:.2f} s"),
            ("overlay / base (target <= 1.2)", f"{with_overlay / base:.2f}x"),
        ]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
