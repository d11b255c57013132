"""`reconciler verify` speed: 200 providers x 3 keys and 2,000 models against fake upstreams
answering with 50 ms latency, at --parallelism 16.

    python benchmarks/bench_verify.py [--runs 3] [--providers 200] [--latency 0.05] [--parallelism 16]

The upstreams (one fake server per family: OpenAI, Azure, Anthropic, OpenRouter; tests/fakeupstream)
run in a child process, so that client and servers do not share a GIL. Measured:

- the whole command, `reconciler verify DIR --parallelism 16` in a fresh process (start-up,
  loading and validating 2,200 documents, every key's listing, 2,000 model lookups, the report);
- `Verifier.run` alone, in this process (the checks without start-up and validation);
- `reconciler validate DIR` on the same manifests: the part of the command that sends nothing;
- the floor: the same requests (same URLs, same headers, each key's requests in sequence)
  sent by a bare `httpx.Client` shared by as many threads.

Prints medians and the ratios to the floor (the issue asks for at most 1.5x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from common import ROOT, reconciler, run_timed, table

sys.path.insert(0, ROOT)
from reconciler.secrets import SecretResolver  # noqa: E402
from reconciler.validate import validate_paths  # noqa: E402
from reconciler.verify import Options, Verifier  # noqa: E402
from reconciler.verify import families as fam  # noqa: E402

FAMILIES = ("openai", "azure", "anthropic", "openrouter")
KEYS_PER_PROVIDER = 3

SERVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.fakeupstream import FakeUpstream
plan = json.loads(sys.stdin.readline())
servers = [FakeUpstream(f, {k: "ok" for k in plan["keys"]}, plan["models"][f], latency=plan["latency"],
                        page_size=1000).start() for f in plan["families"]]
print(json.dumps([s.base_url for s in servers]), flush=True)
sys.stdin.read()
"""


def key(provider: int, index: int) -> str:
    return f"sk-bench-{provider:04d}-{index}-0123456789abcdef"


def model_id(family: str, provider: int, index: int) -> str:
    return f"{family}-model-{provider:04d}-{index}"


class Upstreams:
    def __init__(self, providers: int, models_per_provider: int, latency: float) -> None:
        import json

        self.families = [FAMILIES[i % len(FAMILIES)] for i in range(providers)]
        keys = [key(p, k) for p in range(providers) for k in range(KEYS_PER_PROVIDER)]
        models: dict[str, list[str]] = {f: [] for f in FAMILIES}
        for p, family in enumerate(self.families):
            models[family] += [model_id(family, p, m) for m in range(models_per_provider)]
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, ROOT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"keys": keys, "models": models, "latency": latency,
                                             "families": FAMILIES}) + "\n")
        self.process.stdin.flush()
        self.base_urls = dict(zip(FAMILIES, json.loads(self.process.stdout.readline()), strict=True))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def write_manifests(directory: str, upstreams: Upstreams, models_per_provider: int) -> dict[str, str]:
    """One file per provider (the provider and its models); returns the keys' environment."""
    env = {}
    for p, family in enumerate(upstreams.families):
        refs = []
        for k in range(KEYS_PER_PROVIDER):
            env[f"BENCH_KEY_{p}_{k}"] = key(p, k)
            refs.append(f"    - env: BENCH_KEY_{p}_{k}\n")
        docs = [f"apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: p{p:04d}\nspec:\n  type: {family}\n"
                f"  base_url: {upstreams.base_urls[family]}\n  api_keys:\n" + "".join(refs)]
        for m in range(models_per_provider):
            docs.append(f"apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: m{p:04d}-{m}\nspec:\n"
                        f"  provider: p{p:04d}\n  model: {model_id(family, p, m)}\n  context_limit: 100000\n"
                        + ("  default: true\n" if p == 0 and m == 0 else "")
                        + "  pricing: {input: 1, output: 2}\n")
        with open(os.path.join(directory, f"p{p:04d}.yaml"), "w") as fh:
            fh.write("---\n".join(docs))
    return env


def floor_requests(upstreams: Upstreams) -> list[list[tuple[str, dict[str, str]]]]:
    """Per key, the requests verify sends for it, in order."""
    tasks = []
    for p, family in enumerate(upstreams.families):
        root = fam.api_root(family, upstreams.base_urls[family])
        for k in range(KEYS_PER_PROVIDER):
            headers = fam.auth_headers(family, key(p, k))
            requests = []
            probe = fam.key_probe(family, root, headers)
            if probe is not None:
                requests.append((probe.url, headers))
            requests.append((fam.listing(root, headers, paged=family == "anthropic").url, headers))
            tasks.append(requests)
    return tasks


def floor(tasks: list[list[tuple[str, dict[str, str]]]], parallelism: int) -> float:
    limits = httpx.Limits(max_connections=parallelism, max_keepalive_connections=parallelism)
    with httpx.Client(limits=limits, timeout=30) as client:
        def one(requests: list[tuple[str, dict[str, str]]]) -> None:
            for url, headers in requests:
                response = client.get(url, headers=headers)
                assert response.status_code == 200, (url, response.status_code)

        started = time.perf_counter()
        with ThreadPoolExecutor(parallelism) as pool:
            list(pool.map(one, tasks))
        return time.perf_counter() - started


def in_process(directory: str, env: dict[str, str], parallelism: int) -> float:
    manifests = validate_paths([directory]).manifests
    verifier = Verifier(Options(parallelism=parallelism, request_timeout=30), SecretResolver(env))
    started = time.perf_counter()
    report = verifier.run(manifests)
    seconds = time.perf_counter() - started
    assert report.ok, [d.message for d in report.diagnostics][:3]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--models", type=int, default=2000, help="models in all (spread over the providers)")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--parallelism", type=int, default=16)
    args = parser.parse_args()
    per_provider = max(1, args.models // args.providers)
    upstreams = Upstreams(args.providers, per_provider, args.latency)
    try:
        with tempfile.TemporaryDirectory() as directory:
            env = write_manifests(directory, upstreams, per_provider)
            tasks = floor_requests(upstreams)
            requests = sum(len(t) for t in tasks)
            floors, checks, commands, cpus, validates = [], [], [], [], []
            for _ in range(args.runs):  # interleaved, so that drift on a shared machine hits all alike
                floors.append(floor(tasks, args.parallelism))
                checks.append(in_process(directory, env, args.parallelism))
                wall, cpu = run_timed(reconciler("verify", directory, "--parallelism", str(args.parallelism),
                                                 "--request-timeout", "30", "--format", "json"), env=env)
                commands.append(wall)
                cpus.append(cpu)
                validates.append(run_timed(reconciler("validate", directory, "-q"), env=env)[0])
    finally:
        upstreams.close()
    f, c, w = statistics.median(floors), statistics.median(checks), statistics.median(commands)
    print(table(
        f"verify: {args.providers} providers x {KEYS_PER_PROVIDER} keys, {per_provider * args.providers} models, "
        f"{requests} requests at {args.latency * 1000:g} ms, parallelism {args.parallelism} "
        f"(medians of {args.runs})",
        [
            ("floor: bare httpx.Client, same requests", f"{f:.2f} s"),
            ("Verifier.run (checks only)", f"{c:.2f} s"),
            ("reconciler verify (whole command)", f"{w:.2f} s"),
            ("  its CPU time", f"{statistics.median(cpus):.2f} s"),
            ("reconciler validate, same manifests (no requests)", f"{statistics.median(validates):.2f} s"),
            ("checks / floor", f"{c / f:.2f}x"),
            ("whole command / floor", f"{w / f:.2f}x"),
        ],
    ))


if __name__ == "__main__":
    main()
