"""Fit the tagger's model on labelled documents; choose, per label, how to blend rules and model on held-out folds."""

from __future__ import annotations

import random
from collections.abc import Sequence

from nlp.model import TextModel, train_model
from nlp.tagger import Tagger, blend

THRESHOLD_GRID = [round(0.15 + 0.05 * i, 2) for i in range(14)]  # 0.15 .. 0.80
# Share of the rules in a label's score; 1.0 means the model is not trusted for that label.
RULE_WEIGHT_GRID = (1.0, 0.7, 0.5, 0.3)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def choose_blend(
    held_out: Sequence[tuple[dict[str, float], dict[str, float]]],
    gold: Sequence[set[str]],
    label: str,
    default_threshold: float,
) -> tuple[float, float]:
    """Return the (rule weight, threshold) with the best F1 for label on held-out (rules, model) scores.

    Among equal F1s, more weight on the rules (explainable) and a threshold nearer the default win,
    so that thin data does not swing the choice far.
    """
    best, best_key = (1.0, default_threshold), None
    for weight in RULE_WEIGHT_GRID:
        scores = [blend(rules.get(label, 0.0), probs.get(label, 0.0), weight) for rules, probs in held_out]
        for threshold in THRESHOLD_GRID:
            tp = fp = fn = 0
            for score, doc_gold in zip(scores, gold, strict=True):
                predicted, actual = score >= threshold, label in doc_gold
                tp += predicted and actual
                fp += predicted and not actual
                fn += actual and not predicted
            key = (round(_f1(tp, fp, fn), 9), weight, -abs(threshold - default_threshold))
            if best_key is None or key > best_key:
                best, best_key = (weight, threshold), key
    return best


def fit_model(
    rules: Tagger, documents: Sequence[Sequence[tuple[str, str]]], label_sets: Sequence[set[str]],
    *, inner_folds: int = 3, seed: int = 7,
) -> TextModel:
    """Train the model on all documents, with each label's blend and threshold chosen on inner held-out folds."""
    labels = [label.id for label in rules.taxonomy.labels]
    analyses = rules.analyse(documents)
    bags = [rules.model_input(a) for a in analyses]
    order = list(range(len(analyses)))
    random.Random(seed).shuffle(order)
    held_out: list[tuple[dict[str, float], dict[str, float]]] = []
    held_gold: list[set[str]] = []
    if len(order) >= inner_folds * 2:
        for fold in range(inner_folds):
            test = [i for position, i in enumerate(order) if position % inner_folds == fold]
            train = [i for position, i in enumerate(order) if position % inner_folds != fold]
            model = train_model([bags[i] for i in train], [label_sets[i] for i in train], labels, seed=seed)
            probabilities = model.predict([bags[i] for i in test])
            held_out += [(rules.rule_scores(analyses[i]), probs) for i, probs in zip(test, probabilities, strict=True)]
            held_gold += [label_sets[i] for i in test]
    thresholds, weights = {}, {}
    for label in labels if held_out else ():
        weights[label], thresholds[label] = choose_blend(
            held_out, held_gold, label, rules.taxonomy.threshold_for(label)
        )
    model = train_model(bags, list(label_sets), labels, seed=seed)
    model.meta = {"thresholds": thresholds, "rule_weights": weights, "documents": len(analyses)}
    return model
