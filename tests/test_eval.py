"""Tagging quality is measured on held-out folds and must beat the naive baseline."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.evaluate import (
    Example,
    baseline_predict,
    cross_validate,
    evaluate_on_test,
    load_examples,
    model_predictor,
    report_as_dict,
    rules_predictor,
)
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


# Micro-F1 floors a change must keep, a little under the figures in the README (rules: 0.66 and 0.71;
# rules and model: 0.815 and 0.857), so that a change that makes the tagger worse fails here. The model
# trained with Adam instead of plain SGD scores 0.795 and 0.838, and fails.
FLOORS = {"rules_predictor": {"facet": 0.65, "category": 0.69},
          "model_predictor": {"facet": 0.80, "category": 0.845}}


@pytest.mark.parametrize("predictor", [rules_predictor, model_predictor])
def test_cross_validated_tagger_beats_the_baseline_and_keeps_todays_quality(taxonomy, predictor):
    examples = load_examples([SEED], taxonomy)
    report = cross_validate(examples, taxonomy, predictor(taxonomy), k=5)
    for kind in ("facet", "category"):
        tagger, baseline = report[kind]["tagger"]["micro"], report[kind]["baseline"]["micro"]
        assert tagger.f1 >= baseline.f1 + 0.25, (kind, tagger, baseline)
        assert tagger.f1 >= FLOORS[predictor.__name__][kind], (kind, tagger)


def _copy_seed(names: list[str], folder):
    folder.mkdir()
    for name in names:
        shutil.copy(SEED / name, folder / name)
    return folder


def test_eval_test_option_trains_on_paths_and_scores_the_test_folder(tmp_path, taxonomy):
    files = sorted(p.name for p in SEED.glob("*.md"))
    train = _copy_seed(files[:14], tmp_path / "train")
    test = _copy_seed(files[14:17], tmp_path / "test")
    runner = CliRunner(env={"KB_DATA_DIR": str(tmp_path / "data")})

    table = runner.invoke(cli, ["eval", str(train), "--test", str(test)])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0] == f"rules+model: trained on 14 labelled postmortems, tested on 3 in {test}"

    result = runner.invoke(cli, ["eval", str(train), "--test", str(test), "--rules-only", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    test_examples = load_examples([test], taxonomy)
    for kind in ("facet", "category"):
        supports = {label: score["support"] for label, score in report[kind]["tagger"]["labels"].items()}
        assert supports == {label.id: sum(label.id in e.labels for e in test_examples)
                            for label in taxonomy.of_kind(kind)}
    # Rules do not learn, so training on other files must not change what they score on the test folder.
    direct = evaluate_on_test([], test_examples, taxonomy, rules_predictor(taxonomy))
    assert report == report_as_dict(direct)


def test_eval_test_option_rejects_a_folder_without_labelled_postmortems(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    runner = CliRunner(env={"KB_DATA_DIR": str(tmp_path / "data")})
    result = runner.invoke(cli, ["eval", "--rules-only", "--test", str(empty)])
    assert result.exit_code != 0
    assert f"no labelled postmortems found under {empty}" in result.output
