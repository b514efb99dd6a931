"""Build the spaCy pipeline: a blank English model with sentences and lookup lemmas, no download."""

from __future__ import annotations

import re

import numpy
import spacy
from spacy.attrs import IS_PUNCT, LEMMA, ORTH, SENT_START
from spacy.language import Language
from spacy.pipeline import Lemmatizer, Sentencizer
from spacy.tokens import Doc

# A blank line ends a sentence too, so headings, list items and sections never run together.
SENTENCE_ENDS = [*Sentencizer.default_punct_chars, "\n\n", "\n\n\n", "\n\n\n\n"]
SECTION_SEPARATOR = "\n\n"
# Words whose lookup lemma changes their sense keep their own form: a cue "got worse" must not match "got
# wrong" ("worse" -> "wrong"), nor a cue "setting" every "set" ("setting" -> "set").
KEEP_OWN_LEMMA = frozenset({"worse", "worst", "better", "best", "less", "least", "more", "most", "setting"})
# "v12" splits into "v" and "12", so cues such as "rolled back to v" match any version number.
VERSION_PREFIX = r"v(?=\d)"
MAX_TEXT_CHARS = 10_000_000


def build_pipeline() -> Language:
    """Return spacy.blank('en') with a sentencizer and a lookup lemmatizer from spacy-lookups-data."""
    nlp = spacy.blank("en")
    # No parser or entity recogniser runs, so long texts cost time, not memory: accept anything under the
    # upload limit (spaCy's default stops at a million characters).
    nlp.max_length = MAX_TEXT_CHARS
    prefixes = [*nlp.Defaults.prefixes, VERSION_PREFIX]
    nlp.tokenizer.prefix_search = spacy.util.compile_prefix_regex(prefixes).search
    nlp.add_pipe("kb_sentencizer", config={"punct_chars": SENTENCE_ENDS})
    nlp.add_pipe("kb_lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


class ArraySentencizer(Sentencizer):
    """spaCy's sentencizer, reading token ids from one array instead of creating a Token per word."""

    def predict(self, docs):
        """Return, per document, which tokens start a sentence (the same rule as spaCy's sentencizer).

        A word starts a sentence when a sentence end (., ?, a blank line...) came after the previous word;
        punctuation in between, such as a closing quote, stays with the sentence it closes.
        """
        guesses = []
        for doc in docs:
            ends = getattr(self, "_end_ids", None)
            if ends is None:  # string ids are hashes, the same in every vocabulary
                ends = self._end_ids = numpy.asarray(
                    sorted(doc.vocab.strings.add(char) for char in self.punct_chars), dtype="uint64")
            starts = numpy.zeros(len(doc), dtype=bool)
            if len(doc):
                columns = doc.to_array([ORTH, IS_PUNCT])
                at = numpy.minimum(numpy.searchsorted(ends, columns[:, 0]), len(ends) - 1)
                is_end = ends[at] == columns[:, 0]
                words = numpy.flatnonzero(~(is_end | columns[:, 1].astype(bool)))
                ends_so_far = numpy.cumsum(is_end)[words]
                starts[words] = numpy.diff(ends_so_far, prepend=0) > 0
                starts[0] = True
            guesses.append(starts)
        return guesses

    def set_annotations(self, docs, batch_tag_ids):
        """Write sentence starts in one array operation per document (fresh from the tokenizer, so unset)."""
        for doc, starts in zip(docs, batch_tag_ids, strict=True):
            if len(doc):
                doc.from_array([SENT_START], numpy.where(starts, 1, -1).astype(numpy.uint64).reshape(-1, 1))


class CachedLookupLemmatizer(Lemmatizer):
    """spaCy's lookup lemmatizer, with a cache from word id to lemma id and one array write per document."""

    def __call__(self, doc: Doc) -> Doc:
        cache = self.__dict__.setdefault("_lemma_ids", {})  # word id -> lemma id; ids are string hashes
        table = self.lookups.get_table("lemma_lookup", {})
        strings = doc.vocab.strings
        lemmas = []
        for orth in doc.to_array(ORTH).tolist():
            lemma = cache.get(orth)
            if lemma is None:
                text = strings[orth]
                lemma = cache[orth] = strings.add(text if text in KEEP_OWN_LEMMA else table.get(text, text))
            lemmas.append(lemma)
        if lemmas:
            doc.from_array([LEMMA], numpy.asarray(lemmas, dtype=numpy.uint64).reshape(-1, 1))
        return doc


@Language.factory("kb_sentencizer", default_config={"punct_chars": None, "overwrite": False})
def make_sentencizer(nlp: Language, name: str, punct_chars: list[str] | None, overwrite: bool) -> ArraySentencizer:
    """Create the array-based sentencizer."""
    return ArraySentencizer(name, punct_chars=punct_chars, overwrite=overwrite)


@Language.factory("kb_lemmatizer", default_config={"mode": "lookup", "overwrite": False})
def make_lemmatizer(nlp: Language, name: str, mode: str, overwrite: bool) -> CachedLookupLemmatizer:
    """Create the cached lookup lemmatizer."""
    return CachedLookupLemmatizer(nlp.vocab, None, name, mode=mode, overwrite=overwrite)


BLOCK_START = re.compile(r"\n(?=[ \t]*(?:[-*+]\s|\d+[.)]\s|\|))")
# Possessive quantifiers keep this linear on a long run of spaces or dashes.
TABLE_RULE = re.compile(r"^[ \t]*+\|?[ \t:]*+-{3}[-|: \t]*+$", re.MULTILINE)


def separate_blocks(text: str) -> str:
    """Put list items and table rows in paragraphs of their own, so each is a sentence of its own."""
    return BLOCK_START.sub("\n\n", TABLE_RULE.sub("", text))


def lower_same_length(text: str) -> str:
    """Lower-case text without changing its length, so character offsets stay valid."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
