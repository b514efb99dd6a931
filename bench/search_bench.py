"""Search at scale: index build speed, then search latency over HTTP with highlighted top 10, against SQLite FTS5.

Run: .venv/bin/python bench/search_bench.py [--docs 10000 50000] [--requests 40]
Targets (issue 4), 2-core machine: p95 <= 50 ms at 10k and <= 200 ms at 50k, also for queries matching a
third of the corpus; index build >= 800 docs/s; the search process under 500 MB resident at 50k.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from waitress.server import create_server  # noqa: E402

from app import create_app  # noqa: E402
from bench.synthetic import fill_database  # noqa: E402
from kb.reindex import rebuild_index  # noqa: E402

# (query, FTS5 form): broad words match a large share of the corpus, specific ones a handful.
QUERIES = [
    ("model", "model"), ("pipeline", "pipeline"), ("drift", "drift*"), ("feature store", "feature OR store"),
    ('"feature store"', '"feature store"'), ("retraining stopped silently", "retraining OR stopped OR silently"),
    ("fraud threshold", "fraud OR threshold"), ("tokenizer upgrade", "tokenizer OR upgrade"),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def fts5_reference(db_path: Path, requests: int) -> dict[str, tuple[float, float, int]]:
    """Build an FTS5 table over the same texts and time the same queries with bm25 and snippets."""
    connection = sqlite3.connect(db_path)
    connection.execute("CREATE VIRTUAL TABLE fts USING fts5(slug UNINDEXED, title, summary, body, "
                       "tokenize='porter')")
    connection.execute("INSERT INTO fts SELECT slug, title, summary, body FROM postmortem")
    connection.commit()
    figures = {}
    for _query, fts in QUERIES:
        times = []
        for _ in range(requests):
            begin = time.perf_counter()
            total = connection.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (fts,)).fetchone()[0]
            connection.execute(
                "SELECT slug, snippet(fts, 3, '<mark>', '</mark>', '…', 20) FROM fts WHERE fts MATCH ? "
                "ORDER BY bm25(fts, 0, 3.0, 1.5, 1.0) LIMIT 10", (fts,)).fetchall()
            times.append((time.perf_counter() - begin) * 1000)
        figures[fts] = (statistics.median(times), percentile(times, 0.95), total)
    connection.close()
    return figures


def run(count: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"KB_DATA_DIR": folder, "KB_SECRET_KEY": "bench"})
        kb = app.extensions["kb"]
        fill_database(kb, count)
        begin = time.perf_counter()
        rebuild_index(kb)
        seconds = time.perf_counter() - begin
        print(f"\n== {count} postmortems: index built in {seconds:.1f} s, {count / seconds:.0f} docs/s")
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=server.run, daemon=True).start()
        print(f"{'query':<32} {'matches':>8} {'p50 ms':>8} {'p95 ms':>8}   FTS5 p50/p95 ms")
        reference = fts5_reference(Path(folder) / "kb.sqlite3", requests)
        for query, fts in QUERIES:
            url = f"http://127.0.0.1:{server.effective_port}/api/search?" + urllib.parse.urlencode(
                {"q": query, "per_page": 10})
            times, total = [], 0
            for _ in range(requests + 2):
                begin = time.perf_counter()
                with urllib.request.urlopen(url) as response:
                    total = json.loads(response.read())["total"]
                times.append((time.perf_counter() - begin) * 1000)
            times = times[2:]
            f50, f95, _ = reference[fts]
            print(f"{query:<32} {total:>8} {statistics.median(times):8.1f} {percentile(times, 0.95):8.1f}"
                  f"   {f50:6.1f} / {f95:6.1f}")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory of this process (server, index, generator): {rss_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    for count in args.docs:
        run(count, args.requests)


if __name__ == "__main__":
    main()
