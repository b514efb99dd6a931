"""Fit the tagger's model on labelled documents and choose per-label thresholds on held-out folds."""

from __future__ import annotations

import random
from collections.abc import Sequence

from nlp.model import TextModel, train_model
from nlp.tagger import Tagger

THRESHOLD_GRID = [round(0.15 + 0.05 * i, 2) for i in range(14)]  # 0.15 .. 0.80
RULE_WEIGHT = 0.5


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def choose_thresholds(
    scores: Sequence[dict[str, float]], gold: Sequence[set[str]], labels: Sequence[str], default: float
) -> dict[str, float]:
    """Return, per label, the threshold on the grid that gives the best F1 on these held-out scores."""
    chosen = {}
    for label in labels:
        best, best_f1 = default, -1.0
        for threshold in THRESHOLD_GRID:
            tp = fp = fn = 0
            for doc_scores, doc_gold in zip(scores, gold, strict=True):
                predicted, actual = doc_scores.get(label, 0.0) >= threshold, label in doc_gold
                tp += predicted and actual
                fp += predicted and not actual
                fn += actual and not predicted
            f1 = _f1(tp, fp, fn)
            # Prefer the threshold nearest the default among equals, so thin data does not swing it far.
            if f1 > best_f1 + 1e-9 or (abs(f1 - best_f1) <= 1e-9 and abs(threshold - default) < abs(best - default)):
                best, best_f1 = threshold, f1
        chosen[label] = best
    return chosen


def combined_scores(tagger: Tagger, model: TextModel, analyses: list, weight: float) -> list[dict[str, float]]:
    """Return the blended rule and model score of every label for each analysed document."""
    probabilities = model.predict([a.doc for a in analyses])
    result = []
    for analysis, probs in zip(analyses, probabilities, strict=True):
        rules = tagger.rule_scores(analysis)
        result.append({label: weight * rules.get(label, 0.0) + (1 - weight) * probs.get(label, 0.0)
                       for label in tagger.kinds})
    return result


def fit_model(
    rules: Tagger, documents: Sequence[Sequence[tuple[str, str]]], label_sets: Sequence[set[str]],
    *, inner_folds: int = 3, seed: int = 7,
) -> TextModel:
    """Train the model on all documents, with thresholds chosen on inner held-out folds."""
    labels = [label.id for label in rules.taxonomy.labels]
    analyses = rules.analyse(documents)
    docs = [a.doc for a in analyses]
    order = list(range(len(analyses)))
    random.Random(seed).shuffle(order)
    held_scores: list[dict[str, float]] = []
    held_gold: list[set[str]] = []
    if len(order) >= inner_folds * 2:
        for fold in range(inner_folds):
            test = [i for position, i in enumerate(order) if position % inner_folds == fold]
            train = [i for position, i in enumerate(order) if position % inner_folds != fold]
            model = train_model([docs[i] for i in train], [label_sets[i] for i in train], labels, seed=seed)
            held_scores += combined_scores(rules, model, [analyses[i] for i in test], RULE_WEIGHT)
            held_gold += [label_sets[i] for i in test]
    thresholds = (choose_thresholds(held_scores, held_gold, labels, rules.taxonomy.threshold)
                  if held_scores else {})
    model = train_model(docs, list(label_sets), labels, seed=seed)
    model.meta = {"thresholds": thresholds, "rule_weight": RULE_WEIGHT, "documents": len(analyses)}
    return model
