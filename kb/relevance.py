"""Measure ranking quality on judged queries: mean reciprocal rank and recall at 5."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kb.context import KnowledgeBase
from kb.search import search


@dataclass
class QueryResult:
    q: str
    reciprocal_rank: float
    recall_at_5: float
    top: list[str]


def load_judged(path: str | Path) -> list[dict]:
    """Read a judged-query file: [[query]] tables with q and relevant slugs."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))["query"]


def judged_corpus(path: str | Path, seed_dir: str | Path) -> list[Path]:
    """Return the seed files the judgements were made over (corpus_prefixes in the judged-query file)."""
    prefixes = tuple(tomllib.loads(Path(path).read_text(encoding="utf-8")).get("corpus_prefixes", [""]))
    return sorted(p for p in Path(seed_dir).glob("*.md") if p.name.startswith(prefixes))


def evaluate_queries(kb: KnowledgeBase, judged: list[dict], *, depth: int = 10) -> list[QueryResult]:
    """Run every judged query and score where its relevant postmortems landed."""
    results = []
    for entry in judged:
        top = [hit.slug for hit in search(kb, entry["q"], per_page=depth).hits]
        relevant = set(entry["relevant"])
        first = next((rank for rank, slug in enumerate(top, start=1) if slug in relevant), None)
        results.append(QueryResult(
            q=entry["q"], reciprocal_rank=1 / first if first else 0.0,
            recall_at_5=len(relevant & set(top[:5])) / len(relevant), top=top,
        ))
    return results


def summarise(results: list[QueryResult]) -> dict[str, float]:
    """Return MRR and mean recall@5 over the queries."""
    n = len(results) or 1
    return {"queries": len(results), "mrr": sum(r.reciprocal_rank for r in results) / n,
            "recall_at_5": sum(r.recall_at_5 for r in results) / n}
