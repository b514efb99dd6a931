"""Build the spaCy pipeline: a blank English model with sentences and lookup lemmas, no download."""

from __future__ import annotations

import spacy
from spacy.language import Language


def build_pipeline() -> Language:
    """Return spacy.blank('en') with a sentencizer and a lookup lemmatizer from spacy-lookups-data."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def lower_same_length(text: str) -> str:
    """Lower-case text without changing its length, so character offsets stay valid."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
