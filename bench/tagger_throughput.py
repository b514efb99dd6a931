"""Measure tagger throughput on 400-word postmortems, on one core, with rules only and with the model.

Run: .venv/bin/python bench/tagger_throughput.py [--docs 2000]
Documents are assembled from sentences of seed_data so that the vocabulary and cue density are realistic.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says

from kb.evaluate import load_examples  # noqa: E402
from nlp.tagger import Tagger  # noqa: E402
from nlp.taxonomy import load_taxonomy  # noqa: E402
from nlp.training import fit_model  # noqa: E402

SECTIONS = ["summary", "impact", "timeline", "root_cause", "contributing_factors", "resolution", "action_items"]


def synthetic_documents(examples, count: int, words: int = 400, seed: int = 1) -> list[list[tuple[str, str]]]:
    """Return count documents of about `words` words, each split over the usual sections."""
    sentences = [s for e in examples for _, text in e.sections for s in re.split(r"(?<=[.!?])\s+", text) if s]
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        picked, total = [], 0
        while total < words:
            sentence = rng.choice(sentences)
            picked.append(sentence)
            total += len(sentence.split())
        size = -(-len(picked) // len(SECTIONS))
        documents.append([("title", "Synthetic incident")] + [
            (key, " ".join(picked[i * size : (i + 1) * size])) for i, key in enumerate(SECTIONS)
        ])
    return documents


def measure(tagger: Tagger, documents) -> float:
    tagger.tag_many(documents[:50])  # warm up
    start = time.perf_counter()
    tagger.tag_many(documents)
    return len(documents) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args()
    taxonomy = load_taxonomy(ROOT / "nlp" / "taxonomy.toml")
    examples = load_examples([ROOT / "seed_data"], taxonomy)
    documents = synthetic_documents(examples, args.docs)
    mean_words = sum(len(t.split()) for d in documents for _, t in d) / len(documents)
    rules = Tagger(taxonomy)
    print(f"{len(documents)} documents, {mean_words:.0f} words each on average")
    print(f"rules only:    {measure(rules, documents):8.0f} docs/s")
    model = fit_model(rules, [e.sections for e in examples], [e.labels for e in examples])
    print(f"rules + model: {measure(Tagger(taxonomy, model), documents):8.0f} docs/s")


if __name__ == "__main__":
    main()
