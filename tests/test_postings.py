"""kb.postings writes exactly what Whoosh's own indexing path writes, only faster."""

from __future__ import annotations

import pytest
from whoosh.analysis import RegexTokenizer, StandardAnalyzer, StemmingAnalyzer
from whoosh.fields import ID, TEXT, Schema
from whoosh.filedb.filestore import RamStorage
from whoosh.formats import Positions
from whoosh.query import Phrase, Term

from kb.postings import PostmortemText, TermPositions, phrase_docs, stemming_parts, term_docs, tune_whoosh
from tests.conftest import SEED

TEXTS = [
    "The the feature-store's 3.14 values: retraining stopped; the model's drift. Ünïcödé İstanbul ﬁle",
    "a an the of",  # nothing but stop words
    "",
    "Word word WORD words worded wording a.b.c x_y *wild* c++ 2024-05-01 e-mail",
] + [path.read_text(encoding="utf-8") for path in sorted(SEED.glob("*.md"))[:25]]


@pytest.mark.parametrize("text", TEXTS)
def test_term_positions_equal_whooshs_own(text):
    analyzer = StemmingAnalyzer()
    ours = sorted(TermPositions(field_boost=2.0).word_values(text, analyzer, mode="index"))
    whooshs = sorted(Positions(field_boost=2.0).word_values(text, analyzer, mode="index"))
    assert ours == whooshs


@pytest.mark.parametrize("analyzer", [StandardAnalyzer(), StemmingAnalyzer(minsize=3, stoplist=None),
                                      RegexTokenizer(), StemmingAnalyzer(ignore={"models"})])
def test_other_analyzers_keep_whooshs_path(analyzer):
    assert stemming_parts(analyzer) is None
    text = TEXTS[0]
    assert (list(TermPositions().word_values(text, analyzer, mode="index"))
            == list(Positions().word_values(text, analyzer, mode="index")))


def build(field_type) -> RamStorage:
    storage = RamStorage()
    schema = Schema(slug=ID(stored=True), body=field_type(analyzer=StemmingAnalyzer(), spelling=True))
    index = storage.create_index(schema)
    writer = index.writer()
    for number, path in enumerate(sorted(SEED.glob("*.md"))[:40]):
        writer.add_document(slug=str(number), body=path.read_text(encoding="utf-8"))
    writer.commit()
    return index


def postings(index, field: str) -> dict:
    with index.reader() as reader:
        return {term: [(m.id(), m.value()) for m in iter_matcher(reader.postings(field, term))]
                for term in reader.lexicon(field)}


def iter_matcher(matcher):
    while matcher.is_active():
        yield matcher
        matcher.next()


def test_index_holds_the_same_postings_lengths_and_spelling_words():
    tune_whoosh()
    ours, whooshs = build(PostmortemText), build(TEXT)
    assert postings(ours, "body") == postings(whooshs, "body")
    with ours.reader() as mine, whooshs.reader() as theirs:
        assert list(mine.lexicon("spell_body")) == list(theirs.lexicon("spell_body"))
        assert [mine.doc_field_length(n, "body") for n in range(40)] == [
            theirs.doc_field_length(n, "body") for n in range(40)]
        assert (mine.min_field_length("body"), mine.max_field_length("body")) == (
            theirs.min_field_length("body"), theirs.max_field_length("body"))
    with ours.searcher() as mine, whooshs.searcher() as theirs:
        for word in ("retrainig", "pipelien", "monitring", "feture"):
            assert mine.suggest("body", word, limit=3) == theirs.suggest("body", word, limit=3) != []


def test_spelling_words_are_given_once_per_writer_schema():
    field = PostmortemText(analyzer=StemmingAnalyzer(), spelling=True)
    assert list(field.spellable_words("Drift and drifted models")) == ["drift", "drifted", "models"]
    assert list(field.spellable_words("models drift again")) == ["again"]
    import pickle

    fresh = pickle.loads(pickle.dumps(field))
    assert list(fresh.spellable_words("models drift again")) == ["again", "drift", "models"]


def test_term_docs_equal_whooshs_own_across_segments_and_deletions():
    storage = RamStorage()
    index = storage.create_index(Schema(slug=ID(stored=True), body=PostmortemText(analyzer=StemmingAnalyzer())))
    paths = sorted(SEED.glob("*.md"))[:60]
    for start in range(0, 60, 20):  # three segments
        writer = index.writer()
        for number in range(start, start + 20):
            writer.add_document(slug=str(number), body=paths[number].read_text(encoding="utf-8"))
        writer.commit(merge=False)
    writer = index.writer()
    for slug in ("3", "25", "26", "59"):
        writer.delete_by_term("slug", slug)
    writer.commit(merge=False)
    with index.searcher() as searcher:
        assert len(searcher.reader().leaf_readers()) == 3
        for word in ("model", "drift", "the", "pipelin", "nosuchword", "retrain", "alert"):
            assert term_docs(searcher, "body", word) == set(searcher.docs_for_query(Term("body", word)))
        for words in (["featur", "store"], ["root", "caus"], ["model", "drift"], ["on", "call"],
                      ["data", "qualiti", "check"], ["nosuchword", "model"], ["model"]):
            found = phrase_docs(searcher, "body", words)
            assert found == set(searcher.docs_for_query(Phrase("body", words))), words
