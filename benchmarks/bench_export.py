"""Export and one big PriceCatalog, each against its floor, in one run.

    python benchmarks/bench_export.py [--runs 3] [--models 10000] [--entries 20000]

- `reconciler export` of a SQLite store holding 500 providers / 10,000 models, against a cold
  `reconciler validate` of the manifests that filled it (target: export <= 1.5x validate);
- `reconciler validate` of one PriceCatalog of 20,000 entries, against the parse floor of that
  file (PyYAML's C loader, garbage collector paused; target <= 1.5x).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile

from common import ROOT, python, reconciler, run_timed, table, time_command

sys.path.insert(0, ROOT)
os.environ.setdefault("RECONCILER_CACHE", "off")  # cold runs, as measured before the cache
from benchmarks.generate import generate  # noqa: E402

FLOOR = """
import gc, sys, yaml
gc.disable()
with open(sys.argv[1], 'rb') as fh:
    list(yaml.load_all(fh.read().decode(), Loader=yaml.CSafeLoader))
"""


def catalog(path: str, entries: int) -> None:
    lines = ["apiVersion: reconciler/v1", "kind: PriceCatalog", "metadata:", "  name: big", "spec:", "  prices:"]
    lines += [f'    - {{provider: openai, model: model-{i:05d}, input: "{i % 97}.25", output: "{i % 13}.5", '
              f'cache_read: null, cache_write: "0.1"}}' for i in range(entries)]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--providers", type=int, default=500)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=20_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="reconciler-bench-export-")
    try:
        data = os.path.join(work, "manifests")
        generate(data, args.providers, args.models)
        env = {"RECONCILER_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
               **{f"PROVIDER_{i:04d}_KEY_{s}": f"sk-bench-{i:04d}-{s}-0123456789abcdef"
                  for i in range(args.providers) for s in "AB"}}
        store = f"sqlite:///{os.path.join(work, 'store.db')}"
        run_timed(reconciler("apply", data, "--store", store, "-q"), env)
        validate = time_command(reconciler("validate", data, "-q"), args.runs)
        out = os.path.join(work, "out")

        def export() -> float:
            shutil.rmtree(out, ignore_errors=True)
            return run_timed(reconciler("export", "--store", store, "--out", out, "-q"), env)[0]

        exported = sorted(export() for _ in range(args.runs))[args.runs // 2]
        big = os.path.join(work, "catalog", "catalog.yaml")
        os.makedirs(os.path.dirname(big))
        catalog(big, args.entries)
        floor = time_command([*python(FLOOR), big], args.runs)
        ours = time_command(reconciler("validate", os.path.dirname(big), "-q"), args.runs)
        print(table(f"{args.providers} providers / {args.models:,} models; one catalog of {args.entries:,} entries "
                    f"(medians of {args.runs})", [
            ("validate, cold", f"{validate:.2f} s"),
            ("export", f"{exported:.2f} s"),
            ("export / validate (target <= 1.5)", f"{exported / validate:.2f}x"),
            ("catalog parse floor", f"{floor:.2f} s"),
            ("catalog validate", f"{ours:.2f} s"),
            ("catalog validate / floor (target <= 1.5)", f"{ours / floor:.2f}x"),
        ]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
