"""Start-up: `reconciler --help` against `python -c "import yaml"` (target: <= 1.5x).

    python benchmarks/bench_startup.py [--runs 15]

The commands run interleaved, one of each per round, so that a noisy neighbour on a shared
machine slows both alike; the ratios are medians of the per-round ratios, in wall time and in
CPU time (user + system, which the host's steal time does not inflate). Byte code is cached in
a temporary PYTHONPYCACHEPREFIX after one warm-up run, as a pip install would have it, whatever
PYTHONDONTWRITEBYTECODE says: otherwise every run would compile reconciler's sources again.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from common import python, reconciler, run_timed, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("reconciler")  # the console script pip installs: what users run
    installed = [str(script)] if script.exists() else reconciler()
    commands = {"bare": python("pass"), "yaml": python("import yaml"), "help": [*installed, "--help"],
                "validate-help": [*installed, "validate", "--help"], "module-help": reconciler("--help")}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as cache:
        env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": cache}
        for argv in commands.values():
            run_timed(argv, env)  # warm-up: byte code written
        for _ in range(args.runs):
            for name, argv in commands.items():
                w, c = run_timed(argv, env)
                wall[name].append(w)
                cpu[name].append(c)
    wall_ratio = statistics.median(h / y for h, y in zip(wall["help"], wall["yaml"], strict=True))
    cpu_ratio = statistics.median(h / y for h, y in zip(cpu["help"], cpu["yaml"], strict=True))
    ms = {name: statistics.median(times) * 1000 for name, times in wall.items()}
    print(table("start-up (median of fresh processes, interleaved)", [
        ("python -c pass", f"{ms['bare']:.0f} ms"),
        ('python -c "import yaml"', f"{ms['yaml']:.0f} ms"),
        ("reconciler --help", f"{ms['help']:.0f} ms"),
        ("reconciler validate --help", f"{ms['validate-help']:.0f} ms"),
        ("python -m reconciler --help", f"{ms['module-help']:.0f} ms"),
        ("--help / import yaml, wall (target <= 1.5)", f"{wall_ratio:.2f}x"),
        ("--help / import yaml, CPU time", f"{cpu_ratio:.2f}x"),
    ]))


if __name__ == "__main__":
    main()
