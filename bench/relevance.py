"""Search relevance on the judged queries over the seed files they were judged on: MRR and recall@5.

Run: .venv/bin/python bench/relevance.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.config import load_config  # noqa: E402
from kb.context import open_kb  # noqa: E402
from kb.ingest import import_paths  # noqa: E402
from kb.relevance import evaluate_queries, judged_corpus, load_judged, summarise  # noqa: E402

JUDGED = ROOT / "tests" / "data" / "judged_queries.toml"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        kb = open_kb(load_config({"KB_DATA_DIR": folder}))
        import_paths(kb, judged_corpus(JUDGED, ROOT / "seed_data"))
        results = evaluate_queries(kb, load_judged(JUDGED))
        for result in results:
            print(f"RR {result.reciprocal_rank:4.2f}  R@5 {result.recall_at_5:4.2f}  {result.q}")
        figures = summarise(results)
        print(f"\n{figures['queries']} queries: MRR {figures['mrr']:.3f}, recall@5 {figures['recall_at_5']:.3f}")
        kb.engine.dispose()


if __name__ == "__main__":
    main()
