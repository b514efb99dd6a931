"""Make synthetic postmortems for benchmarks: markdown files, or rows written straight into a database.

The text is assembled from sentences of seed_data, so vocabulary and cue density look like real postmortems.
Only the seed files named in corpus_sources.txt are used, so that adding seed postmortems does not change the
benchmark corpus and figures stay comparable from one change to the next.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = Path(__file__).resolve().parent / "corpus_sources.txt"
SEVERITIES = ["SEV1", "SEV2", "SEV3", "SEV4", ""]
SERVICES = ["search-ranker", "recs-api", "recs-trainer", "pricing-engine", "fraud-scorer", "forecast-batch",
            "feature-store", "support-bot", "label-pipeline", "image-tagger", "shipping-eta", "review-filter"]
SECTIONS = ["Summary", "Impact", "Timeline", "Root cause", "Contributing factors", "Resolution", "Action items"]


def seed_sentences() -> list[str]:
    """Return the prose sentences of the listed seed postmortems (front matter and headings left out)."""
    sentences = []
    names = SOURCES.read_text(encoding="utf-8").split()
    for path in (ROOT / "seed_data" / name for name in names):
        if not path.is_file():
            raise FileNotFoundError(f"{SOURCES.name} names {path.name}, which is not in seed_data/")
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
        for line in text.splitlines():
            if line.startswith(("#", "|", "---")) or not line.strip():
                continue
            sentences += [s.strip(" -*") for s in re.split(r"(?<=[.!?])\s+", line) if len(s.split()) > 4]
    return sentences


class Generator:
    """Deterministic random postmortems: same seed, same corpus."""

    def __init__(self, seed: int = 1, labels: dict[str, str] | None = None):
        self.rng = random.Random(seed)
        self.sentences = seed_sentences()
        self.labels = labels or {}

    def document(self, i: int, words: int = 400) -> dict:
        rng = self.rng
        day = date(2021, 1, 1) + timedelta(days=rng.randrange(0, 2130))
        started = datetime(day.year, day.month, day.day, rng.randrange(24), tzinfo=UTC)
        detected = started + timedelta(minutes=int(rng.lognormvariate(5, 1.6)))
        resolved = detected + timedelta(minutes=int(rng.lognormvariate(6, 1.2)))
        picked, total = [], 0
        while total < words:
            sentence = rng.choice(self.sentences)
            picked.append(sentence)
            total += len(sentence.split())
        size = -(-len(picked) // len(SECTIONS))
        sections = {name: " ".join(picked[k * size : (k + 1) * size]) for k, name in enumerate(SECTIONS)}
        facets = [label for label, kind in self.labels.items() if kind == "facet" and rng.random() < 0.35]
        categories = [label for label, kind in self.labels.items() if kind == "category" and rng.random() < 0.15]
        return {
            "slug": f"synthetic-{i:06d}", "title": f"{rng.choice(SERVICES)} incident {i}: " + picked[0][:80],
            "date": day, "severity": rng.choice(SEVERITIES), "services": rng.sample(SERVICES, rng.randint(1, 2)),
            "started": started, "detected": detected, "resolved": resolved, "sections": sections,
            "facets": facets, "categories": categories,
        }

    def markdown(self, doc: dict) -> str:
        # A JSON string is a valid YAML string, whatever quotes and colons the title holds.
        front = (f"---\ntitle: {json.dumps(doc['title'])}\ndate: {doc['date']}\nseverity: {doc['severity']}\n"
                 f"services: [{', '.join(doc['services'])}]\nstarted: {doc['started']:%Y-%m-%dT%H:%M}\n"
                 f"detected: {doc['detected']:%Y-%m-%dT%H:%M}\nresolved: {doc['resolved']:%Y-%m-%dT%H:%M}\n---\n")
        return front + "".join(f"\n## {name}\n{text}\n" for name, text in doc["sections"].items())


def write_markdown(folder: Path, count: int, seed: int = 1) -> list[Path]:
    """Write count markdown postmortems into folder and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = Generator(seed)
    paths = []
    for i in range(count):
        path = folder / f"synthetic-{i:06d}.md"
        path.write_text(generator.markdown(generator.document(i)), encoding="utf-8")
        paths.append(path)
    return paths


def fill_database(kb, count: int, seed: int = 1, batch: int = 2000) -> None:
    """Insert count postmortems with tags and services directly, in bulk (for read benchmarks)."""
    from sqlalchemy import insert

    from kb.models import Postmortem, PostmortemLabel, PostmortemService

    generator = Generator(seed, kb.labels)
    with kb.engine.begin() as connection:
        for start in range(0, count, batch):
            docs = [generator.document(i) for i in range(start, min(count, start + batch))]
            now = datetime.now(UTC)
            rows = [{
                "id": start + k + 1, "slug": d["slug"], "title": d["title"], "summary": d["sections"]["Summary"][:300],
                "body": "\n\n".join(d["sections"].values()), "incident_date": d["date"], "severity": d["severity"],
                "services": d["services"], "authors": [], "sections": {}, "source_path": "", "content_hash": "",
                "started_at": d["started"], "detected_at": d["detected"], "resolved_at": d["resolved"],
                "detect_seconds": int((d["detected"] - d["started"]).total_seconds()),
                "resolve_seconds": int((d["resolved"] - d["detected"]).total_seconds()),
                "needs_reindex": True, "created_at": now, "updated_at": now,
            } for k, d in enumerate(docs)]
            connection.execute(insert(Postmortem), rows)
            connection.execute(insert(PostmortemService), [
                {"postmortem_id": row["id"], "service": s} for row in rows for s in row["services"]])
            tags = [{"postmortem_id": row["id"], "label_id": label, "source": "auto", "status": "suggested",
                     "score": 0.7, "evidence": [], "method": "rules", "cues": [], "decided_by": ""}
                    for row, d in zip(rows, docs, strict=True) for label in d["facets"] + d["categories"]]
            if tags:
                connection.execute(insert(PostmortemLabel), tags)
