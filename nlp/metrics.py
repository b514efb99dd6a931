"""Precision, recall and F1 per label, micro and macro, for multi-label predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    support: int  # how many documents carry the label in the gold data

    def as_dict(self) -> dict:
        return {"precision": round(self.precision, 3), "recall": round(self.recall, 3),
                "f1": round(self.f1, 3), "support": self.support}


def _score(tp: int, fp: int, fn: int) -> Score:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, tp + fn)


def evaluate_sets(gold: Sequence[set[str]], predicted: Sequence[set[str]], labels: Sequence[str]) -> dict:
    """Return {"labels": {label: Score}, "micro": Score, "macro": Score} over the given labels."""
    counts = {label: [0, 0, 0] for label in labels}
    for gold_set, predicted_set in zip(gold, predicted, strict=True):
        for label in labels:
            in_gold, in_pred = label in gold_set, label in predicted_set
            if in_gold and in_pred:
                counts[label][0] += 1
            elif in_pred:
                counts[label][1] += 1
            elif in_gold:
                counts[label][2] += 1
    per_label = {label: _score(*values) for label, values in counts.items()}
    micro = _score(*(sum(values[i] for values in counts.values()) for i in range(3)))
    n = len(per_label) or 1
    macro = Score(
        sum(s.precision for s in per_label.values()) / n,
        sum(s.recall for s in per_label.values()) / n,
        sum(s.f1 for s in per_label.values()) / n,
        micro.support,
    )
    return {"labels": per_label, "micro": micro, "macro": macro}
