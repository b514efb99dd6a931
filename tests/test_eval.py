"""Tagging quality is measured on held-out folds and must beat the naive baseline."""

from __future__ import annotations

import pytest

from kb.evaluate import Example, baseline_predict, cross_validate, load_examples, model_predictor, rules_predictor
from nlp.metrics import Score, evaluate_sets
from nlp.taxonomy import load_taxonomy
from tests.conftest import ROOT, SEED


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(ROOT / "nlp" / "taxonomy.toml")


def test_metrics_per_label_micro_and_macro():
    gold = [{"a"}, {"a", "b"}, {"b"}]
    predicted = [{"a"}, {"a"}, {"a", "b"}]
    result = evaluate_sets(gold, predicted, ["a", "b"])
    assert result["labels"] == {
        "a": Score(precision=2 / 3, recall=1.0, f1=0.8, support=2),
        "b": Score(precision=1.0, recall=0.5, f1=2 / 3, support=2),
    }
    assert result["micro"] == Score(precision=0.75, recall=0.75, f1=0.75, support=4)


def test_baseline_needs_every_word_of_the_label_name(taxonomy):
    example = Example("x.md", [("summary", "Data drift and a feedback loop; stale features.")], set())
    assert baseline_predict(example, taxonomy) == {"data-drift", "feedback-loop"}


@pytest.mark.parametrize("predictor", [rules_predictor, model_predictor])
def test_cross_validated_tagger_beats_the_baseline(taxonomy, predictor):
    examples = load_examples([SEED], taxonomy)
    report = cross_validate(examples, taxonomy, predictor(taxonomy), k=5)
    for kind in ("facet", "category"):
        tagger, baseline = report[kind]["tagger"]["micro"], report[kind]["baseline"]["micro"]
        # A guard against regressions: today's figures are well above these floors (see the README).
        assert tagger.f1 >= baseline.f1 + 0.25, (kind, tagger, baseline)
