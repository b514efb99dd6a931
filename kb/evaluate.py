"""Measure the tagger on labelled postmortems with k-fold cross-validation, against a naive baseline."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kb.errors import ParseError
from kb.ingest import tagger_input
from kb.parse import ParsedPostmortem, parse_file
from kb.sources import discover_files
from nlp.metrics import evaluate_sets
from nlp.tagger import Tagger
from nlp.taxonomy import Taxonomy
from nlp.training import fit_model

PLURAL = {"facet": "facets", "category": "categories"}


@dataclass
class Example:
    name: str
    sections: list[tuple[str, str]]
    labels: set[str]


def load_examples(paths: Sequence[str | Path], taxonomy: Taxonomy) -> list[Example]:
    """Return every parsable file under paths that carries human labels known to the taxonomy."""
    files, _problems = discover_files(paths)
    known = {label.id for label in taxonomy.labels}
    examples = []
    for path in files:
        try:
            parsed: ParsedPostmortem = parse_file(path)
        except ParseError:
            continue
        labels = set(parsed.human_labels["facets"] + parsed.human_labels["categories"]) & known
        if labels:
            examples.append(Example(path.name, tagger_input(parsed), labels))
    return examples


def baseline_predict(example: Example, taxonomy: Taxonomy) -> set[str]:
    """Predict a label when all the words of its own name occur in the text (the naive baseline)."""
    words = set(re.findall(r"[a-z]+", " ".join(text for _, text in example.sections).lower()))
    return {label.id for label in taxonomy.labels if set(label.id.split("-")) <= words}


def folds(examples: list[Example], k: int, seed: int = 13) -> list[tuple[list[Example], list[Example]]]:
    """Split examples into k (train, test) pairs after a seeded shuffle."""
    order = examples[:]
    random.Random(seed).shuffle(order)
    return [([e for j, e in enumerate(order) if j % k != i], [e for j, e in enumerate(order) if j % k == i])
            for i in range(k)]


def cross_validate(
    examples: list[Example],
    taxonomy: Taxonomy,
    make_predictor: Callable[[list[Example]], Callable[[list[Example]], list[set[str]]]],
    k: int = 5,
) -> dict[str, dict]:
    """Train on k-1 folds, predict the held-out fold, and score all held-out predictions per kind."""
    held_out: list[Example] = []
    predicted: list[set[str]] = []
    for train, test in folds(examples, k):
        held_out += test
        predicted += make_predictor(train)(test)
    return score_report(held_out, predicted, taxonomy)


def evaluate_on_test(
    train: list[Example],
    test: list[Example],
    taxonomy: Taxonomy,
    make_predictor: Callable[[list[Example]], Callable[[list[Example]], list[set[str]]]],
) -> dict[str, dict]:
    """Train once on train, predict test, and score the predictions per kind (no cross-validation)."""
    return score_report(test, make_predictor(train)(test), taxonomy)


def score_report(examples: Sequence[Example], predicted: list[set[str]], taxonomy: Taxonomy) -> dict[str, dict]:
    """Score predictions and the naive baseline against the examples' own labels, per kind."""
    gold = [e.labels for e in examples]
    baseline = [baseline_predict(e, taxonomy) for e in examples]
    report = {}
    for kind in ("facet", "category"):
        labels = [label.id for label in taxonomy.of_kind(kind)]
        report[kind] = {
            "tagger": evaluate_sets(gold, predicted, labels),
            "baseline": evaluate_sets(gold, baseline, labels),
        }
    return report


def format_report(report: dict[str, dict], heading: str) -> str:
    """Return the evaluation as plain-text tables under a one-line heading."""
    lines = [heading, ""]
    for kind, results in report.items():
        tagger, base = results["tagger"], results["baseline"]
        lines.append(f"{PLURAL[kind]:<24} {'P':>6} {'R':>6} {'F1':>6} {'support':>8}   baseline F1")
        for label, score in tagger["labels"].items():
            lines.append(f"  {label:<22} {score.precision:6.2f} {score.recall:6.2f} {score.f1:6.2f} "
                         f"{score.support:8d}   {base['labels'][label].f1:6.2f}")
        for avg in ("micro", "macro"):
            s, b = tagger[avg], base[avg]
            lines.append(f"  {avg + ' average':<22} {s.precision:6.2f} {s.recall:6.2f} {s.f1:6.2f} "
                         f"{'':8}   {b.f1:6.2f}  (baseline P {b.precision:.2f} R {b.recall:.2f})")
        lines.append("")
    return "\n".join(lines)


DEFAULT_EVAL_DIR = Path(__file__).resolve().parent.parent / "seed_data"
Predictor = Callable[[list[Example]], list[set[str]]]


def rules_predictor(taxonomy: Taxonomy) -> Callable[[list[Example]], Predictor]:
    """Return a predictor factory that ignores training data and applies the rules."""
    rules = Tagger(taxonomy)

    def make(_train: list[Example]) -> Predictor:
        return lambda test: [{s.label for s in result} for result in rules.tag_many(e.sections for e in test)]

    return make


def model_predictor(taxonomy: Taxonomy) -> Callable[[list[Example]], Predictor]:
    """Return a predictor factory that trains the model on each training fold, then tags the held-out fold."""
    rules = Tagger(taxonomy)

    def make(train: list[Example]) -> Predictor:
        model = fit_model(rules, [e.sections for e in train], [e.labels for e in train])
        tagger = Tagger(taxonomy, model)
        return lambda test: [{s.label for s in result} for result in tagger.tag_many(e.sections for e in test)]

    return make


def report_as_dict(report: dict[str, dict]) -> dict:
    """Return the report with every score as plain numbers, for JSON."""
    return {
        kind: {
            system: {
                "labels": {label: score.as_dict() for label, score in scores["labels"].items()},
                "micro": scores["micro"].as_dict(),
                "macro": scores["macro"].as_dict(),
            }
            for system, scores in results.items()
        }
        for kind, results in report.items()
    }
