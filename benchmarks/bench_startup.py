"""Start-up: `reconciler --help` against `python -c "import yaml"` (target: <= 1.5x).

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse

from common import python, reconciler, table, time_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bare = time_command(python("pass"), args.runs)
    yaml_import = time_command(python("import yaml"), args.runs)
    help_ = time_command(reconciler("--help"), args.runs)
    validate_help = time_command(reconciler("validate", "--help"), args.runs)
    print(table("start-up (median of fresh processes)", [
        ("python -c pass", f"{bare * 1000:.0f} ms"),
        ('python -c "import yaml"', f"{yaml_import * 1000:.0f} ms"),
        ("reconciler --help", f"{help_ * 1000:.0f} ms"),
        ("reconciler validate --help", f"{validate_help * 1000:.0f} ms"),
        ("--help / import yaml (target <= 1.5)", f"{help_ / yaml_import:.2f}x"),
    ]))


if __name__ == "__main__":
    main()
