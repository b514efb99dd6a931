"""Build the spaCy pipeline: a blank English model with sentences and lookup lemmas, no download."""

from __future__ import annotations

import re

import spacy
from spacy.language import Language
from spacy.pipeline import Sentencizer

# A blank line ends a sentence too, so headings, list items and sections never run together.
SENTENCE_ENDS = [*Sentencizer.default_punct_chars, "\n\n", "\n\n\n", "\n\n\n\n"]
SECTION_SEPARATOR = "\n\n"
MAX_TEXT_CHARS = 10_000_000


def build_pipeline() -> Language:
    """Return spacy.blank('en') with a sentencizer and a lookup lemmatizer from spacy-lookups-data."""
    nlp = spacy.blank("en")
    # No parser or entity recogniser runs, so long texts cost time, not memory: accept anything under the
    # upload limit (spaCy's default stops at a million characters).
    nlp.max_length = MAX_TEXT_CHARS
    nlp.add_pipe("sentencizer", config={"punct_chars": SENTENCE_ENDS})
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


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
