"""Bulk import speed: `kb import` of N synthetic postmortems, end to end, with the time of each stage.

    .venv/bin/python bench/ingest_bench.py --docs 10000

Prints docs/s end to end, the share of time spent parsing, tagging, storing and indexing, the peak
resident memory of the importing process and of its indexing process, and the time to import the same
files again unchanged. With two or more cores, indexing runs in a second process alongside the rest;
"index" is then the time the import waits for it at the end.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kb.ingest  # noqa: E402
from bench.synthetic import write_markdown  # noqa: E402
from kb.config import load_config  # noqa: E402
from kb.context import open_kb  # noqa: E402

STAGES = {"parse": ["parse_file"], "store": ["_store_all", "_store_each"], "index": ["index_postmortems"]}


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


@contextmanager
def stage_timers(knowledge_base):
    """Time the stages of kb.ingest by wrapping the functions it calls; yield the totals in seconds."""
    totals: dict[str, float] = defaultdict(float)
    originals = {}

    def timed(stage, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[stage] += time.perf_counter() - start
        return wrapper

    for stage, names in STAGES.items():
        for name in names:
            originals[name] = getattr(kb.ingest, name)
            setattr(kb.ingest, name, timed(stage, originals[name]))
    tagger = knowledge_base.tagger
    tag_many, finish = tagger.tag_many, kb.ingest.IndexWorker.finish
    tagger.tag_many = timed("tag", tag_many)
    kb.ingest.IndexWorker.finish = timed("index", finish)
    try:
        yield totals
    finally:
        for name, function in originals.items():
            setattr(kb.ingest, name, function)
        tagger.tag_many, kb.ingest.IndexWorker.finish = tag_many, finish


def run(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kb-ingest-bench-") as tmp:
        folder = Path(tmp) / "docs"
        started = time.perf_counter()
        write_markdown(folder, count)
        print(f"wrote {count} synthetic postmortems in {time.perf_counter() - started:.1f} s")
        knowledge_base = open_kb(load_config({"KB_DATA_DIR": str(Path(tmp) / "data")}))
        knowledge_base.tagger  # noqa: B018  (built before the clock starts, as a running server has it)
        with stage_timers(knowledge_base) as totals:
            started = time.perf_counter()
            report = kb.ingest.import_paths(knowledge_base, [folder])
            elapsed = time.perf_counter() - started
        counts = report.counts()
        print(f"first import: {counts}")
        print(f"  {count / elapsed:,.0f} docs/s end to end ({elapsed:.1f} s)")
        measured = sum(totals.values())
        for stage in ("parse", "tag", "store", "index"):
            print(f"  {stage:<6} {totals[stage]:7.1f} s  {100 * totals[stage] / elapsed:5.1f}%")
        print(f"  other  {elapsed - measured:7.1f} s  {100 * (elapsed - measured) / elapsed:5.1f}%")
        print(f"  peak memory {peak_rss_mb():,.0f} MB, "
              f"indexing process {peak_rss_mb(resource.RUSAGE_CHILDREN):,.0f} MB")
        own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        print(f"  CPU time: this process {own.ru_utime + own.ru_stime:.1f} s, "
              f"indexing processes {children.ru_utime + children.ru_stime:.1f} s")
        started = time.perf_counter()
        again = kb.ingest.import_paths(knowledge_base, [folder])
        print(f"unchanged re-import: {again.counts()} in {time.perf_counter() - started:.1f} s")
        print(f"  peak memory {peak_rss_mb():,.0f} MB")
        knowledge_base.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args()
    run(args.docs)


if __name__ == "__main__":
    main()
