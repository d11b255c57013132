"""Validate speed on 500 providers / 10,000 models (≈280k lines), against the floors, in one run.

    python benchmarks/bench_validate.py [--runs 3] [--skip-check-jsonschema]

Prints: the parse floor (PyYAML's C loader, garbage collector paused, in a fresh
process), `reconciler validate` on the same files, check-jsonschema on the same
files with our schemas, and the ratios the foundation issue asks for.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile

from common import ROOT, python, reconciler, table, time_command

sys.path.insert(0, ROOT)
os.environ.setdefault("RECONCILER_CACHE", "off")  # cold runs, as measured before the cache
from benchmarks.generate import generate  # noqa: E402

FLOOR = """
import gc, os, sys, yaml
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(sys.argv[1]) for f in fs)
gc.disable()
for path in files:
    with open(path, 'rb') as fh:
        list(yaml.load_all(fh.read().decode(), Loader=yaml.CSafeLoader))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-check-jsonschema", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="reconciler-bench-")
    try:
        lines = generate(os.path.join(work, "set"), 500, 10_000, "files")
        data = os.path.join(work, "set")
        floor = time_command([*python(FLOOR), data], args.runs)
        ours = time_command(reconciler("validate", data), args.runs)
        rows = [
            ("documents / lines", f"10500 / {lines}"),
            ("parse floor (C loader, GC paused)", f"{floor:.2f} s"),
            ("reconciler validate", f"{ours:.2f} s"),
            ("validate / floor (target <= 1.5)", f"{ours / floor:.2f}x"),
        ]
        if not args.skip_check_jsonschema and shutil.which("check-jsonschema"):
            check = 0.0
            for kind, folder in (("provider", "providers"), ("model", "models")):
                files = sorted(glob.glob(os.path.join(data, folder, "*.yaml")))
                schema = os.path.join(ROOT, "schemas", f"{kind}.schema.json")
                check += time_command(["check-jsonschema", "--schemafile", schema, *files], 1)
            rows += [
                ("check-jsonschema (same files, our schemas)", f"{check:.2f} s"),
                ("check-jsonschema / validate (target >= 10)", f"{check / ours:.1f}x"),
            ]
        print(table("validate: 500 providers, 10,000 models", rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
