"""Rule tagger: cue phrases matched on lemmas and lower case, scored per sentence and section."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from nlp.pipeline import build_pipeline, lower_same_length
from nlp.taxonomy import Taxonomy

# Words that, shortly before a cue in the same sentence, say the cue does not hold.
NEGATORS = frozenset({"not", "n't", "never", "without", "no", "neither", "nor", "none"})
NEGATION_WINDOW = 5
# Phrases that anywhere in a sentence rule out what it mentions.
RULED_OUT = re.compile(
    r"\b(ruled? out|ruling out|was not the cause|were not the cause|wasn't the cause|"
    r"not (?:a|the) (?:factor|cause|problem|issue)|no evidence|red herring|unrelated)\b"
)
MAX_EVIDENCE = 3
MAX_SENTENCE_WEIGHT = 0.95


@dataclass
class Suggestion:
    """One label the tagger assigns, with its score and the sentences behind it."""

    label: str
    kind: str
    score: float
    evidence: list[str] = field(default_factory=list)
    method: str = "rules"


def clean_sentence(text: str) -> str:
    """Return a sentence without markdown list marks, emphasis and extra white space."""
    text = re.sub(r"^\s*(?:[-*+>]|\d+[.)]|\|)\s*", "", text.strip())
    text = re.sub(r"[*_`]{1,3}", "", text)
    return re.sub(r"\s+", " ", text).strip(" |")


class RuleTagger:
    """Tag postmortem sections with the taxonomy's labels using cue phrases."""

    def __init__(self, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self.nlp = build_pipeline()
        self.kinds = {label.id: label.kind for label in taxonomy.labels}
        self.cue_matchers = (
            PhraseMatcher(self.nlp.vocab, attr="LEMMA"),
            PhraseMatcher(self.nlp.vocab, attr="LOWER"),
        )
        self.negative_matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        for label in taxonomy.labels:
            patterns = list(self.nlp.pipe(lower_same_length(cue) for cue in label.cues))
            for matcher in self.cue_matchers:
                matcher.add(label.id, patterns)
            if label.negative:
                self.negative_matcher.add(
                    label.id, list(self.nlp.pipe(lower_same_length(c) for c in label.negative))
                )

    def tag(self, sections: Sequence[tuple[str, str]]) -> list[Suggestion]:
        """Tag one document given as (section key, text) pairs."""
        return self.tag_many([sections])[0]

    def tag_many(self, documents: Iterable[Sequence[tuple[str, str]]]) -> list[list[Suggestion]]:
        """Tag many documents, each a list of (section key, text) pairs, in one spaCy pass."""
        documents = [list(doc) for doc in documents]
        texts = (lower_same_length(text) for doc in documents for _key, text in doc)
        parsed = iter(self.nlp.pipe(texts, batch_size=256))
        results = []
        for doc in documents:
            hits: dict[str, list[tuple[float, str]]] = {}
            for key, text in doc:
                spacy_doc = next(parsed)
                weight = self.taxonomy.section_weights.get(key, 1.0)
                for label_id, sentence in self._matches(spacy_doc):
                    evidence = clean_sentence(text[sentence.start_char : sentence.end_char])
                    hits.setdefault(label_id, []).append((weight, evidence))
            results.append(self._score(hits))
        return results

    def _matches(self, doc: Doc) -> list[tuple[str, Span]]:
        """Return (label, sentence) once per label and sentence whose cue is not negated."""
        vocab = self.nlp.vocab.strings
        negatives = {(vocab[m], doc[s].sent.start) for m, s, _e in self.negative_matcher(doc)}
        found: dict[tuple[str, int], Span] = {}
        for matcher in self.cue_matchers:
            for match_id, start, _end in matcher(doc):
                label_id = vocab[match_id]
                sentence = doc[start].sent
                if (label_id, sentence.start) in found or (label_id, sentence.start) in negatives:
                    continue
                if self._negated(doc, sentence, start):
                    continue
                found[(label_id, sentence.start)] = sentence
        return [(label_id, sentence) for (label_id, _), sentence in found.items()]

    @staticmethod
    def _negated(doc: Doc, sentence: Span, start: int) -> bool:
        window = doc[max(sentence.start, start - NEGATION_WINDOW) : start]
        if any(token.lower_ in NEGATORS for token in window):
            return True
        return bool(RULED_OUT.search(sentence.text))

    def _score(self, hits: dict[str, list[tuple[float, str]]]) -> list[Suggestion]:
        suggestions = []
        for label_id, found in hits.items():
            miss = 1.0
            for weight, _ in found:
                miss *= 1.0 - min(MAX_SENTENCE_WEIGHT, self.taxonomy.cue_weight * weight)
            score = round(1.0 - miss, 4)
            if score < self.taxonomy.threshold_for(label_id):
                continue
            evidence = []
            for _, sentence in sorted(found, key=lambda item: -item[0]):
                if sentence and sentence not in evidence:
                    evidence.append(sentence)
            suggestions.append(
                Suggestion(label_id, self.kinds[label_id], score, evidence[:MAX_EVIDENCE])
            )
        return sorted(suggestions, key=lambda s: (-s.score, s.label))
