"""nlp.training: how rules and model are weighed per label, and where a label's threshold is set."""

from __future__ import annotations

import random

import numpy
import pytest

from kb.evaluate import load_examples
from nlp.tagger import Tagger, stack_inputs, stacked
from nlp.taxonomy import load_taxonomy
from nlp.training import choose_threshold, fit_model, fit_stack
from tests.conftest import SEED, TAXONOMY


def simulated(weights: list[float], n: int, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Return n rows of (rule score, model log-odds, 1) and labels drawn from a logistic model with weights."""
    rng = numpy.random.default_rng(seed)
    inputs = numpy.column_stack([rng.uniform(0, 1, n), rng.normal(0, 2, n), numpy.ones(n)])
    truth = rng.uniform(0, 1, n) < 1 / (1 + numpy.exp(-inputs @ numpy.asarray(weights)))
    return inputs, truth.astype(float)


def test_fit_stack_recovers_the_weights_that_drew_the_labels():
    inputs, truth = simulated([3.0, 0.8, -2.0], 20000, seed=1)
    assert fit_stack(inputs, truth) == pytest.approx([3.0, 0.8, -2.0], abs=0.15)


def test_fit_stack_stays_finite_when_one_input_separates_the_labels():
    rules = numpy.linspace(0, 1, 40)
    inputs = numpy.column_stack([rules, numpy.zeros(40), numpy.ones(40)])
    truth = (rules > 0.5).astype(float)
    weights = fit_stack(inputs, truth)
    assert numpy.isfinite(weights).all()
    assert weights[0] > 5 and weights[1] == pytest.approx(0.0)
    scores = [stacked(weights, rule, 0.5) for rule in rules]
    assert [score >= 0.5 for score in scores] == [bool(t) for t in truth]


def test_stacked_is_the_logistic_of_the_weighted_inputs():
    assert stacked([0.0, 1.0, 0.0], 0.9, 0.3) == pytest.approx(0.3)  # weights that trust only the model
    assert stacked([4.0, 0.0, -2.0], 1.0, 0.01) == pytest.approx(1 / (1 + numpy.exp(-2.0)))
    assert stacked([1.0, 1.0, 1.0], 0.0, 0.0) == pytest.approx(1e-4 * numpy.e / (1 - 1e-4 + 1e-4 * numpy.e))
    assert stacked([0.0, 0.0, -1e6], 0.0, 0.5) == 0.0  # no overflow far out
    assert stack_inputs(0.2, 1.0) == pytest.approx([0.2, numpy.log(0.9999 / 0.0001), 1.0])


def test_choose_threshold_takes_the_best_f1_and_the_default_among_equals():
    scores = numpy.asarray([0.9, 0.7, 0.42, 0.38, 0.3, 0.1])
    truth = numpy.asarray([True, True, True, False, False, False])
    assert choose_threshold(scores, truth, default=0.5) == 0.4
    # Every threshold from 0.25 to 0.8 finds the one positive alone: the one nearest the default wins.
    assert choose_threshold(numpy.asarray([0.9, 0.2]), numpy.asarray([True, False]), default=0.6) == 0.6


def test_fit_model_estimates_its_quality_on_folds_it_did_not_fit():
    taxonomy = load_taxonomy(TAXONOMY)
    examples = load_examples([SEED], taxonomy)[::6]
    documents, gold = [e.sections for e in examples], [e.labels for e in examples]
    shuffled = gold[:]
    random.Random(1).shuffle(shuffled)  # the same labels, each on some other postmortem's text
    rules = Tagger(taxonomy)
    real = fit_model(rules, documents, gold).meta["held_out"]
    unrelated = fit_model(rules, documents, shuffled).meta["held_out"]
    for kind in ("facet", "category"):
        kind_labels = {label.id for label in taxonomy.of_kind(kind)}
        assert real[kind]["support"] == sum(len(labels & kind_labels) for labels in gold)
        assert real[kind]["f1"] >= unrelated[kind]["f1"] + 0.2, (kind, real, unrelated)
