"""Coder store apply speed: 1,000 new models against the fake Coder with 5 ms latency per request.

    python benchmarks/bench_coder.py [--runs 3] [--models 1000] [--latency 0.005]

Times `CoderStore.apply` at parallelism 1 and 16, and the floor at the same
parallelism: the same POST requests (same paths, same bodies) sent by a bare
`httpx.Client` shared by that many threads. Every measurement gets a fresh fake
Coder in its own process (one organization, one provider), so client and server
do not share a GIL. Prints medians and the ratios the Coder store issue asks for.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from common import ROOT, table

sys.path.insert(0, ROOT)
from reconciler.changes import APPLIED, CREATE, Change  # noqa: E402
from reconciler.state import MODEL  # noqa: E402
from reconciler.stores.base import RunInfo  # noqa: E402
from reconciler.stores.coder import CoderStore  # noqa: E402
from reconciler.stores.coder.mapping import model_body, model_create_fields, models_path  # noqa: E402

SERVER = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.fakecoder import FakeCoder
coder = FakeCoder().start()
coder.add_organization("coder", is_default=True)
coder.latency = float(sys.argv[2])
print(coder.url, coder.token, flush=True)
sys.stdin.read()
"""
PROVIDER = {"type": "openai-compat", "name": "compat", "enabled": True,
            "base_url": "https://llm.internal.example.com/v1", "api_keys": ["sk-bench-0000000000000001"]}


class FakeServer:
    """A fresh fake Coder in a child process, with the provider the models use."""

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, ROOT, str(latency)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url, self.token = self.process.stdout.readline().split()
        with httpx.Client(base_url=self.url, headers=self.headers) as client:
            self.org_id = client.get("/api/v2/organizations").json()[0]["id"]
            self.provider_id = client.post("/api/v2/ai/providers", json=PROVIDER).json()["id"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Coder-Session-Token": self.token}

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def records(count: int) -> dict[str, dict[str, Any]]:
    return {
        f"model-{i:04d}": {"display_name": f"Model {i}", "enabled": True, "default": False,
                           "context_limit": 128000, "compression_threshold": 70,
                           "config": {"temperature": 0.5, "max_output_tokens": 4096 + i}}
        for i in range(count)
    }


def time_store(server: FakeServer, models: dict[str, dict[str, Any]], parallelism: int) -> float:
    environ = {"CODER_SESSION_TOKEN": server.token}
    store = CoderStore("coder+" + server.url, parallelism=parallelism, environ=environ)
    try:
        store.read()  # the index of IDs an apply starts from (the plan's read)
        changes = [Change(CREATE, MODEL, ("coder", "compat", name), None, record)
                   for name, record in models.items()]
        started = time.perf_counter()
        results = store.apply(changes, {}, RunInfo("bench", "0"))
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    failed = [r for r in results if r.status != APPLIED]
    if failed:
        sys.exit(f"apply failed: {failed[0].to_dict()}")
    return elapsed


def time_floor(server: FakeServer, models: dict[str, dict[str, Any]], parallelism: int) -> float:
    """The same requests, sent by a bare client shared by `parallelism` threads."""
    path = models_path(server.org_id)
    bodies = [{"ai_provider_id": server.provider_id, "model": name,
               **model_body(record, model_create_fields(record))} for name, record in models.items()]
    limits = httpx.Limits(max_connections=parallelism, max_keepalive_connections=parallelism)
    transport = httpx.HTTPTransport(limits=limits, verify=False)
    with httpx.Client(base_url=server.url, headers=server.headers, transport=transport) as client:
        client.get("/api/v2/organizations")  # the store also starts with warm connections

        def send(body: dict[str, Any]) -> int:
            return client.post(path, json=body).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(parallelism) as pool:
            codes = list(pool.map(send, bodies))
        elapsed = time.perf_counter() - started
    if set(codes) != {201}:
        sys.exit(f"floor requests failed: {sorted(set(codes))}")
    return elapsed


def median(runs: int, measure: Callable[[FakeServer], float], latency: float) -> float:
    samples = []
    for _ in range(runs):
        server = FakeServer(latency)
        try:
            samples.append(measure(server))
        finally:
            server.stop()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.005)
    args = parser.parse_args()
    models = records(args.models)
    times: dict[tuple[str, int], float] = {}
    for parallelism in (1, 16):
        for kind, measure in (("floor", time_floor), ("apply", time_store)):
            times[(kind, parallelism)] = median(
                args.runs, functools.partial(measure, models=models, parallelism=parallelism), args.latency)
    rows = [
        (f"{kind} at parallelism {p}", f"{seconds:.2f} s") for (kind, p), seconds in times.items()
    ] + [
        ("apply / floor at 1", f"{times[('apply', 1)] / times[('floor', 1)]:.2f}x"),
        ("apply / floor at 16 (target <= 1.5)", f"{times[('apply', 16)] / times[('floor', 16)]:.2f}x"),
        ("apply at 1 / apply at 16 (target >= 5)", f"{times[('apply', 1)] / times[('apply', 16)]:.1f}x"),
    ]
    title = (f"{args.models} new models, fake Coder with {args.latency * 1000:g} ms latency, "
             f"median of {args.runs}")
    print(table(title, rows))


if __name__ == "__main__":
    main()
