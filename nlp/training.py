"""Fit the tagger's model on labelled documents; learn, per label, how to weigh rules and model on held-out folds."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy

from nlp.metrics import evaluate_sets
from nlp.model import TextModel, train_model
from nlp.tagger import Tagger, stack_inputs, stacked

THRESHOLD_GRID = [round(0.15 + 0.05 * i, 2) for i in range(14)]  # 0.15 .. 0.80
RIDGE = 0.1  # pulls the stacking weights towards 0, so that a label with few examples is not fitted to them
NEWTON_STEPS = 25


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _logistic(totals: numpy.ndarray) -> numpy.ndarray:
    return 0.5 * (1.0 + numpy.tanh(totals / 2))  # 1 / (1 + e^-x), without overflow for large totals


def fit_stack(inputs: numpy.ndarray, truth: numpy.ndarray) -> numpy.ndarray:
    """Return the ridge logistic regression weights that best predict truth from inputs (one row per document)."""
    weights = numpy.zeros(inputs.shape[1])
    penalty = RIDGE * numpy.eye(inputs.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not pulled towards 0
    for _step in range(NEWTON_STEPS):
        probs = _logistic(inputs @ weights)
        gradient = inputs.T @ (probs - truth) + penalty @ weights
        hessian = (inputs * (probs * (1 - probs))[:, None]).T @ inputs + penalty
        step = numpy.linalg.solve(hessian + 1e-9 * numpy.eye(len(weights)), gradient)
        weights -= step
        if float(numpy.abs(step).max()) < 1e-8:
            break
    return weights


def choose_threshold(scores: numpy.ndarray, truth: numpy.ndarray, default: float) -> float:
    """Return the threshold with the best F1 on held-out scores; among equals, the one nearest the default."""
    best, best_key = default, None
    for threshold in THRESHOLD_GRID:
        predicted = scores >= threshold
        tp = int((predicted & truth).sum())
        fp = int((predicted & ~truth).sum())
        fn = int((~predicted & truth).sum())
        key = (round(_f1(tp, fp, fn), 9), -abs(threshold - default))
        if best_key is None or key > best_key:
            best, best_key = threshold, key
    return best


def fit_label(inputs: numpy.ndarray, truth: numpy.ndarray, default: float) -> tuple[list[float], float] | None:
    """Return a label's stacking weights and threshold fitted on held-out rows; None when they hold one class only."""
    if truth.all() or not truth.any():
        return None
    weights = fit_stack(inputs, truth.astype(float))
    threshold = choose_threshold(_logistic(inputs @ weights), truth, default)
    return [round(float(w), 6) for w in weights], threshold


def fit_model(
    rules: Tagger, documents: Sequence[Sequence[tuple[str, str]]], label_sets: Sequence[set[str]],
    *, inner_folds: int = 5, seed: int = 7,
) -> TextModel:
    """Train the model on all documents, with each label's stacking weights and threshold fitted on inner folds.

    The model's meta also holds an estimate of its quality: micro precision, recall and F1 per kind, of rules
    and model combined, on each inner fold with the weights and thresholds fitted on the other folds.
    """
    labels = [label.id for label in rules.taxonomy.labels]
    analyses = rules.analyse(documents)
    bags = [rules.model_input(a) for a in analyses]
    order = list(range(len(analyses)))
    random.Random(seed).shuffle(order)
    held_out: list[tuple[dict[str, float], dict[str, float]]] = []
    held_gold: list[set[str]] = []
    held_fold: list[int] = []
    if len(order) >= inner_folds * 2:
        for fold in range(inner_folds):
            test = [i for position, i in enumerate(order) if position % inner_folds == fold]
            train = [i for position, i in enumerate(order) if position % inner_folds != fold]
            model = train_model([bags[i] for i in train], [label_sets[i] for i in train], labels, seed=seed)
            probabilities = model.predict([bags[i] for i in test])
            held_out += [(rules.rule_scores(analyses[i]), probs) for i, probs in zip(test, probabilities, strict=True)]
            held_gold += [label_sets[i] for i in test]
            held_fold += [fold] * len(test)
    stacks, thresholds = {}, {}
    predicted: list[set[str]] = [set() for _ in held_out]
    folds = numpy.asarray(held_fold)
    for label in labels if held_out else ():
        inputs = numpy.asarray([stack_inputs(r.get(label, 0.0), p.get(label, 0.0)) for r, p in held_out])
        truth = numpy.asarray([label in gold for gold in held_gold])
        default = rules.taxonomy.threshold_for(label)
        fitted = fit_label(inputs, truth, default)
        if fitted is not None:
            stacks[label], thresholds[label] = fitted
        for fold in range(inner_folds):
            weights, threshold = fit_label(inputs[folds != fold], truth[folds != fold], default) or (None, default)
            for row in numpy.flatnonzero(folds == fold):
                rule_scores, probs = held_out[row]
                if stacked(weights, rule_scores.get(label, 0.0), probs.get(label, 0.0)) >= threshold:
                    predicted[row].add(label)
    model = train_model(bags, list(label_sets), labels, seed=seed)
    model.meta = {"thresholds": thresholds, "stacks": stacks, "documents": len(analyses)}
    if held_out:
        model.meta["held_out"] = {
            kind: evaluate_sets(held_gold, predicted, [label.id for label in rules.taxonomy.of_kind(kind)])["micro"]
            .as_dict() for kind in ("facet", "category")
        }
    return model
