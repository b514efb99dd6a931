"""Trends at scale: time the trends page and /api/trends over HTTP at 50k postmortems.

Run: .venv/bin/python bench/trends_bench.py [--docs 50000] [--requests 30]
Target (issue 5): p95 <= 200 ms on a 2-core machine. Prints p50/p95 per URL (served from the trends cache,
which any write invalidates) and the time to recompute the figures after a write.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from waitress.server import create_server  # noqa: E402

from app import create_app  # noqa: E402
from bench.synthetic import fill_database  # noqa: E402
from kb.trends import PERIODS, compute_trends  # noqa: E402

URLS = ["/trends", "/trends?period=month", "/trends?period=year&confirmed=1", "/api/trends", "/api/trends?period=month"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"KB_DATA_DIR": folder, "KB_SECRET_KEY": "bench"})
        start = time.perf_counter()
        fill_database(app.extensions["kb"], args.docs)
        print(f"filled {args.docs} postmortems in {time.perf_counter() - start:.1f} s")
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        port = server.effective_port
        threading.Thread(target=server.run, daemon=True).start()
        print(f"{'url':<36} {'p50 ms':>8} {'p95 ms':>8} {'KB':>6}")
        for url in URLS:
            times, size = [], 0
            for _ in range(args.requests + 2):
                begin = time.perf_counter()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{url}") as response:
                    size = len(response.read())
                times.append((time.perf_counter() - begin) * 1000)
            times = times[2:]  # the first requests warm caches
            print(f"{url:<36} {statistics.median(times):8.1f} {percentile(times, 0.95):8.1f} {size / 1024:6.0f}")
        # The pages above are served from the cache that a write invalidates; this is the cost after a write.
        kb = app.extensions["kb"]
        with kb.session() as session:
            for period in PERIODS:
                begin = time.perf_counter()
                compute_trends(session=session, period=period)
                print(f"recompute after a write, period={period:<8} {(time.perf_counter() - begin) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
