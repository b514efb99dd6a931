"""The rule tagger: cues on lemmas and lower case, negation, hypotheses, sections, weak cues; the taxonomy check."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app import cli
from nlp.taxonomy import check_taxonomy_data
from tests.conftest import TAXONOMY, labels


@pytest.mark.parametrize(
    ("section", "text", "expected"),
    [
        ("root_cause", "No one owned the feature pipeline after the reorg.", ["structure"]),
        ("root_cause", "Nobody on call understood the model, and only one person knew how to retrain it.", ["people"]),
        ("root_cause", "The team was rewarded for launches, and the bonus depended on shipped features.", ["rewards"]),
        ("root_cause", "Leadership set a hard deadline and there was pressure to ship before Black Friday.", ["strategy"]),
        ("root_cause", "The change went straight to production: there was no review before the push.", ["processes"]),
        ("root_cause", "Shoppers changed their habits and the input distribution drifted.", ["data-drift"]),
        ("root_cause", "The app sent prices in cents, so the feature arrived with the wrong units.", ["data-quality"]),
        ("root_cause", "A prompt injection in the chat made the bot reveal another customer's address.", ["privacy-security"]),
        ("summary", "Drifting inputs, drifted outputs: the distribution shift went unnoticed for weeks.",
         ["data-drift", "monitoring-gap"]),
    ],
)
def test_clear_statements_get_their_label(tagger, section, text, expected):
    assert labels(tagger, (section, text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "There was no evidence of data drift in the inputs.",
        "We ruled out drift: the input distributions were unchanged.",
        "Our first hypothesis was seasonal drift, which we set aside.",
        "Data drift was not the cause.",
    ],
)
def test_negated_or_ruled_out_mentions_do_not_count(tagger, text):
    assert "data-drift" not in labels(tagger, ("root_cause", text))


def test_inflected_forms_match_through_lemmas(tagger):
    assert labels(tagger, ("root_cause", "The pipelines were ORPHANED when the group was reorganised.")) == ["structure"]


def test_sections_weigh_differently(tagger):
    sentence = "The default value had a typo in it."
    assert labels(tagger, ("root_cause", "A misconfigured threshold flipped every decision.")) == ["configuration"]
    assert labels(tagger, ("action_items", "Check for misconfigured thresholds.")) == []
    # Weak cues need company: one mention is not enough, several are.
    assert labels(tagger, ("root_cause", sentence)) == []
    assert labels(tagger, ("root_cause", " ".join([sentence] * 3 + ["Another typo hid in a second default value."]))) == [
        "configuration"]


def test_every_suggestion_has_evidence_and_a_score(tagger):
    suggestions = tagger.tag([("title", "Fraud model drifted"),
                              ("root_cause", "Nobody owned the retraining job, so the model was stale for months.")])
    assert suggestions
    for suggestion in suggestions:
        assert suggestion.evidence and 0 < suggestion.score <= 1 and suggestion.method == "rules"


def test_taxonomy_check_lists_every_problem():
    data = {"label": [
        {"id": "dup", "kind": "facet", "cues": ["alpha"]},
        {"id": "dup", "kind": "facet", "cues": ["alpha"]},
        {"id": "Bad Id", "kind": "thing", "cues": []},
        {"id": "ok", "kind": "category", "cues": ["beta"], "threshold": 2},
    ]}
    assert check_taxonomy_data(data) == [
        "label 'Bad Id': id must be a kebab-case slug such as 'data-drift'",
        "label 'Bad Id': kind must be one of facet, category",
        "label 'Bad Id': has no cue phrases, so the rules can never suggest it",
        "label 'ok': threshold must be a number between 0 and 1",
        "duplicate label id 'dup' (2 times)",
        "cue 'alpha' is listed 2 times in label 'dup'",
    ]


def test_kb_taxonomy_check_command(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["taxonomy", "check", str(TAXONOMY)])
    assert ok.exit_code == 0 and ok.output.endswith("ok, 5 facets and 13 categories\n")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[label]]\nid = "x"\nkind = "facet"\ncues = []\n')
    result = runner.invoke(cli, ["taxonomy", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: label 'x': has no cue phrases, so the rules can never suggest it" in result.output


def test_a_cue_repeated_inside_one_label_is_named_as_such():
    data = {"label": [{"id": "x", "kind": "facet", "cues": ["alpha", "Alpha"]}]}
    assert check_taxonomy_data(data) == ["cue 'alpha' is listed 2 times in label 'x'"]
