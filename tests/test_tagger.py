"""nlp.tagger with the rules alone: clear statements get their label, negated ones do not, every tag shows why."""

from __future__ import annotations

import pytest
import spacy

from kb.ingest import tagger_input
from kb.parse import parse_file
from nlp.model import TextModel, bag_of_lemmas, train_model
from nlp.pipeline import SENTENCE_ENDS, build_pipeline, lower_same_length
from nlp.tagger import Tagger, clean_sentence, join_sections
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
        ("The export died partway through and still reported success.", ["pipeline-failure"]),
        ("The cap was set to 250 in the pricing config instead of 2.5.", ["configuration"]),
        ("The classifier had never seen messages in Portuguese.", ["data-drift"]),
        ("Placeholder dates and duplicate rows filled the training table.", ["data-quality"]),
        ("We rolled back to v11 because v12 did worse than the old model.", ["model-regression"]),
        ("Nothing alerted: the dashboards showed latency and error rate, and both were fine.", ["monitoring-gap"]),
        ("Declines were five times as likely for customers paying from abroad.", ["fairness-bias"]),
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


@pytest.mark.parametrize(
    ("text", "label"),
    [
        # The lookup table lemmatises "worse" to "wrong"; a cue "was worse" must not match "was wrong".
        ("The delivery estimate was wrong for a week.", "model-regression"),
        # Alerts that fired to a team that no longer owned the job are an ownership problem, not a monitoring gap.
        ("The failure alerts went to a channel nobody on the new team read.", "monitoring-gap"),
        ("A memory leak in the tokenizer cache grew each pod until it was killed.", "privacy-security"),
    ],
)
def test_look_alike_wordings_do_not_count(tagger, text, label):
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
     ("| cell |", "cell"), ("  plain  ", "plain"),
     # Code names keep their underscores; emphasis marks around words go.
     ("The `sme_raw.transactions` job and _this_ and __that__", "The sme_raw.transactions job and this and that"),
     ("Reading missing_value_policy didn't ring a bell", "Reading missing_value_policy didn't ring a bell"),
     # The next list item's mark, caught by the sentence splitter, is not part of the sentence.
     ("It was never written down. -", "It was never written down."),
     ("Retire the shared inbox. - [ ]", "Retire the shared inbox."), ("Page the owner. 3.", "Page the owner.")],
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


def test_the_sentencizer_splits_like_spacys_own():
    reference = spacy.blank("en")
    ours = build_pipeline()
    reference.tokenizer = ours.tokenizer
    reference.add_pipe("sentencizer", config={"punct_chars": SENTENCE_ENDS})
    texts = [lower_same_length(join_sections(tagger_input(parse_file(path)))[0])
             for path in sorted(SEED.glob("*.md"))[:20]]
    texts += ["", "x", '"Stop." she said. "Go!" ok', "a.\n\n\n b", ". a", "one\n\ntwo"]
    assert [[s.start for s in doc.sents] for doc in ours.pipe(texts)] == [
        [s.start for s in doc.sents] for doc in reference.pipe(texts)]


def test_version_numbers_split_off_and_comparatives_keep_their_lemma():
    doc = build_pipeline()("rolled back to v12, which was worse")
    assert [(t.text, t.lemma_) for t in doc] == [
        ("rolled", "roll"), ("back", "back"), ("to", "to"), ("v", "v"), ("12", "12"), (",", ","),
        ("which", "which"), ("was", "be"), ("worse", "worse")]


@pytest.fixture(scope="module")
def small_model():
    """A model trained on a few one-line documents per label, enough to learn their words."""
    texts = {"data-drift": "customers changed and the inputs moved far from the training data",
             "configuration": "a wrong value in the settings file set the cap too high"}
    pipeline = build_pipeline()
    docs = [pipeline(f"{text} {n}") for n in range(8) for text in texts.values()]
    gold = [{label} for _n in range(8) for label in texts]
    return train_model([bag_of_lemmas(doc) for doc in docs], gold, list(texts), epochs=30)


def test_the_model_learns_its_labels_words(small_model):
    pipeline = build_pipeline()
    drift, config = small_model.predict([bag_of_lemmas(pipeline(text)) for text in (
        "the inputs moved after customers changed", "the settings file held a wrong value")])
    assert drift["data-drift"] > 0.5 > drift["configuration"]
    assert config["configuration"] > 0.5 > config["data-drift"]


def test_sentence_scores_equal_scoring_each_sentence_alone(small_model):
    pipeline = build_pipeline()
    doc = pipeline("the settings file held a wrong value. the inputs moved after customers changed.")
    sentences = list(doc.sents)
    alone = small_model.predict([bag_of_lemmas(pipeline(s.text)) for s in sentences])
    spans = small_model.predict_spans(doc, [(s.start, s.end) for s in sentences])
    assert [{k: round(v, 6) for k, v in p.items()} for p in spans] == [
        {k: round(v, 6) for k, v in p.items()} for p in alone]


def test_a_saved_model_loads_and_tags_the_same(small_model, tmp_path):
    small_model.save(tmp_path / "model")
    assert TextModel.exists(tmp_path / "model")
    loaded = TextModel.load(tmp_path / "model")
    pipeline = build_pipeline()
    bag = bag_of_lemmas(pipeline("the inputs moved after customers changed"))
    assert loaded.predict([bag]) == small_model.predict([bag])
    tagged = Tagger(load_taxonomy(TAXONOMY), loaded).tag([("root_cause", "The inputs moved after customers changed.")])
    assert [(s.label, s.method) for s in tagged if s.label == "data-drift"] == [("data-drift", "rules+model")]


def test_a_bag_scores_the_same_at_any_length(small_model):
    keys, counts = bag_of_lemmas(build_pipeline()("the inputs moved after customers changed"))
    longer, shorter = small_model.predict([(keys, counts * 3), (keys, counts)])
    assert longer == pytest.approx(shorter)


@pytest.mark.parametrize(("stack", "expected"), [
    ([8.0, 0.0, -4.0], [["data-drift"], []]),  # trusts the rules alone: only the text with a drift cue
    ([0.0, 1.0, 0.0], [["data-drift"], ["data-drift"]]),  # trusts the model: its words are in both texts
])
def test_each_labels_stacking_weights_decide_between_rules_and_model(small_model, stack, expected):
    meta = {"stacks": {"data-drift": stack, "configuration": [0.0, 0.0, -9.0]}, "thresholds": {"data-drift": 0.5}}
    tagger = Tagger(load_taxonomy(TAXONOMY), TextModel(small_model.nlp, small_model.labels, meta))
    tagged = tagger.tag_many([[("root_cause", "The input distribution drifted after the holiday season.")],
                              [("root_cause", "The customers and their inputs were far from the training data.")]])
    assert [[s.label for s in result] for result in tagged] == expected
