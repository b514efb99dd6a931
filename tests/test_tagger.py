"""nlp.tagger with the rules alone: clear statements get their label, negated ones do not, every tag shows why."""

from __future__ import annotations

import pytest

from kb.ingest import tagger_input
from kb.parse import parse_file
from nlp.tagger import clean_sentence
from nlp.taxonomy import TaxonomyError, check_taxonomy_data, load_taxonomy, read_taxonomy_data
from tests.conftest import SEED, TAXONOMY, labels


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nobody owned the feature pipeline after the reorg.", ["structure"]),
        ("The input distribution drifted after the holiday season. After the holidays the inputs drifted further.",
         ["data-drift"]),
        ("Customers changed their habits during the lockdown.", ["data-drift"]),
        ("Leadership pushed for growth before Black Friday.", ["strategy"]),
        ("Bonuses were tied to launch counts, so maintenance work was never rewarded.", ["rewards"]),
        ("The only engineer who understood the model had left, and the rest of the team lacked the skills to debug it.",
         ["people"]),
        ("Prices arrived in cents instead of dollars, a unit mismatch in the feed.", ["data-quality"]),
        ("The fraud model had not been retrained in fourteen months.", ["stale-model"]),
        ("The nightly Airflow job failed silently and left missing partitions.", ["pipeline-failure"]),
        ("The model server was OOMKilled under the traffic spike.", ["serving-infrastructure"]),
        ("A misconfigured threshold declined every order from new customers.", ["configuration"]),
        ("A version bump of the tokenizer library introduced a breaking change.", ["dependency-change"]),
        ("The feature was computed differently offline and online.", ["training-serving-skew"]),
        ("The new model version performed worse than the previous one on mobile.", ["model-regression"]),
        ("The model was trained on its own recommendations, a feedback loop that narrowed the catalogue.",
         ["feedback-loop"]),
        ("There were no alerts on prediction volume, so the failure went unnoticed for a week.", ["monitoring-gap"]),
        ("Sellers from small shops were shown unfairly less often.", ["fairness-bias"]),
        ("The support bot leaked personal data through a prompt injection.", ["privacy-security"]),
        ("No one owned the job.", ["structure"]),
        ("The pipeline had no owner.", ["structure"]),
    ],
)
def test_a_clear_root_cause_gets_its_label(tagger, text, expected):
    assert labels(tagger, ("root_cause", text)) == expected


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("There was no evidence of data drift.", "data-drift"),
        ("There was no drift in the inputs.", "data-drift"),
        ("Data drift was ruled out early.", "data-drift"),
        ("The data drift hypothesis turned out to be wrong.", "data-drift"),
        ("The model was not stale; it had been retrained last week.", "stale-model"),
        ("This wasn't a data quality problem.", "data-quality"),
        ("It could have been a misconfigured threshold, but it wasn't.", "configuration"),
    ],
)
def test_negated_or_ruled_out_statements_do_not_count(tagger, text, label):
    assert label not in labels(tagger, ("root_cause", text))


def test_negation_does_not_reach_across_a_conjunction(tagger):
    assert labels(tagger, ("root_cause", "The model ran for a year without retraining and went stale.")) == [
        "stale-model"]


def test_repeated_evidence_raises_the_score(tagger):
    once = "The input distribution drifted after the holiday season."
    [single] = tagger.tag([("root_cause", once)])
    [repeated] = tagger.tag([("root_cause", f"{once} In January the inputs drifted again.")])
    assert (single.label, repeated.label) == ("data-drift", "data-drift")
    assert single.score < repeated.score <= 1
    assert repeated.evidence == [once, "In January the inputs drifted again."]


def test_sections_weigh_a_sentence_differently(tagger):
    sentence = "The input distribution drifted after the holiday season."
    scores = {key: tagger.rule_scores(tagger.analyse([[(key, sentence)]])[0])["data-drift"]
              for key in ("root_cause", "summary", "timeline", "action_items")}
    assert scores["root_cause"] > scores["summary"] > scores["timeline"] > scores["action_items"] > 0


def test_a_title_counts_and_is_its_own_evidence(tagger):
    [suggestion] = tagger.tag([("title", "Data drift in fraud scores")])
    assert (suggestion.label, suggestion.kind, suggestion.evidence, suggestion.method) == (
        "data-drift", "category", ["Data drift in fraud scores"], "rules")


def test_evidence_is_the_cleaned_sentence_and_cues_are_the_words_that_matched(tagger):
    [suggestion] = tagger.tag([("root_cause", "- **Nobody owned** the feature pipeline after the `reorg`.\n")])
    assert (suggestion.label, suggestion.evidence) == ("structure", ["Nobody owned the feature pipeline after the reorg."])
    assert suggestion.cues and set(suggestion.cues) <= {"nobody owned", "reorg"}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("- **Bold** item", "Bold item"), ("1. First `code` step", "First code step"), ("> quoted\n  text", "quoted text"),
     ("| cell |", "cell"), ("  plain  ", "plain")],
)
def test_clean_sentence(raw, clean):
    assert clean_sentence(raw) == clean


def test_tag_many_agrees_with_tag(tagger):
    documents = [[("title", "Fraud model drifted")], [("root_cause", "No one owned the job.")], [("summary", "")]]
    assert tagger.tag_many(documents) == [tagger.tag(document) for document in documents]


def test_every_suggestion_on_the_seed_postmortems_has_evidence_and_a_score(tagger):
    documents = [tagger_input(parse_file(path)) for path in sorted(SEED.glob("*.md"))[:40]]
    suggestions = [s for document in tagger.tag_many(documents) for s in document]
    assert suggestions
    bad = [(s.label, s.score, s.evidence) for s in suggestions
           if not (0 < s.score <= 1 and s.evidence and all(s.evidence) and s.method == "rules")]
    assert bad == []


def test_the_shipped_taxonomy_has_no_problems():
    assert check_taxonomy_data(read_taxonomy_data(TAXONOMY)) == []


def test_taxonomy_check_finds_every_problem():
    data = {"label": [
        {"id": "owner-gap", "kind": "facet", "cues": ["no owner", "handoff"]},
        {"id": "owner-gap", "kind": "facet", "cues": ["orphaned"]},
        {"id": "drift", "kind": "category", "cues": ["Handoff"], "weak": ["shift"]},
        {"id": "empty", "kind": "category", "cues": []},
        {"id": "odd", "kind": "team", "cues": ["odd cue"], "negative": "not a list"},
        "not a table",
    ]}
    assert check_taxonomy_data(data) == [
        "label 'empty': has no cue phrases, so the rules can never suggest it",
        "label 'odd': kind must be one of facet, category",
        "label 'odd': negative must be a list of non-empty phrases",
        "label #6 is not a table of fields",
        "duplicate label id 'owner-gap' (2 times)",
        "cue 'handoff' is shared by labels owner-gap, drift",
    ]


@pytest.mark.parametrize(
    ("data", "problems"),
    [({}, ["no labels: the file needs a non-empty 'label' list"]),
     ({"label": []}, ["no labels: the file needs a non-empty 'label' list"])],
)
def test_taxonomy_check_needs_labels(data, problems):
    assert check_taxonomy_data(data) == problems


def test_load_taxonomy_reads_yaml_and_refuses_a_bad_file(tmp_path):
    good = tmp_path / "taxonomy.yaml"
    good.write_text("tagger: {threshold: 0.4}\nlabel:\n  - {id: drift, kind: category, cues: [drifted]}\n")
    taxonomy = load_taxonomy(good)
    assert ([(x.id, x.kind, x.cues) for x in taxonomy.labels], taxonomy.threshold_for("drift")) == (
        [("drift", "category", ("drifted",))], 0.4)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[label]]\nid = "drift"\nkind = "category"\ncues = []\n')
    with pytest.raises(TaxonomyError) as caught:
        load_taxonomy(bad)
    assert caught.value.problems == ["label 'drift': has no cue phrases, so the rules can never suggest it"]
