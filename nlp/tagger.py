"""The tagger: cue-phrase rules from the taxonomy, combined with our trained model when there is one."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from nlp.model import TextModel
from nlp.pipeline import build_pipeline, lower_same_length
from nlp.taxonomy import Taxonomy

# Words that, shortly before a cue in the same sentence, say the cue does not hold.
NEGATORS = frozenset({"not", "n't", "never", "without", "no", "neither", "nor", "none"})
# "no" that does not negate what follows: "no one owned", "no longer retrained".
NOT_NEGATING_AFTER_NO = frozenset({"one", "longer", "single", "clear", "owner"})
NEGATION_WINDOW = 5
# Phrases that anywhere in a sentence rule out, or only imagine, what it mentions.
RULED_OUT = re.compile(
    r"\b(ruled? out|ruling out|was not the cause|were not the cause|wasn't the cause|weren't the cause|"
    r"not (?:a|the) (?:factor|cause|problem|issue|culprit)|no evidence|red herring|unrelated|"
    r"first suspected|initially suspected|briefly suspected|could have|would have|might have)\b"
)
MAX_EVIDENCE = 3
MAX_SENTENCE_WEIGHT = 0.95
TITLE_WEIGHT = 1.0


@dataclass
class Suggestion:
    """One label the tagger assigns, with its score and the sentences behind it."""

    label: str
    kind: str
    score: float
    evidence: list[str] = field(default_factory=list)
    method: str = "rules"


@dataclass
class Analysis:
    """What the rules found in one document, and its lemmas and sentences for the model."""

    hits: dict[str, list[tuple[float, str]]]
    lemmas: list[str]
    sentences: list[tuple[str, list[str]]]


def clean_sentence(text: str) -> str:
    """Return a sentence without markdown list marks, emphasis and extra white space."""
    text = re.sub(r"^\s*(?:[-*+>]|\d+[.)]|\|)\s*", "", text.strip())
    text = re.sub(r"[*_`]{1,3}", "", text)
    return re.sub(r"\s+", " ", text).strip(" |")


def rule_score(found: Sequence[tuple[float, str]], cue_weight: float) -> float:
    """Combine matching sentences into one score: each is independent evidence that saturates towards 1."""
    miss = 1.0
    for weight, _sentence in found:
        miss *= 1.0 - min(MAX_SENTENCE_WEIGHT, cue_weight * weight)
    return 1.0 - miss


class Tagger:
    """Tag postmortem sections with the taxonomy's labels."""

    def __init__(self, taxonomy: Taxonomy, model: TextModel | None = None):
        self.taxonomy = taxonomy
        self.model = model
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
        if model is not None:
            self.model_labels = [label for label in model.labels if label in self.kinds]

    @property
    def method(self) -> str:
        return "rules+model" if self.model is not None else "rules"

    def tag(self, sections: Sequence[tuple[str, str]]) -> list[Suggestion]:
        """Tag one document given as (section key, text) pairs."""
        return self.tag_many([sections])[0]

    def tag_many(self, documents: Iterable[Sequence[tuple[str, str]]]) -> list[list[Suggestion]]:
        """Tag many documents, each a list of (section key, text) pairs, in one spaCy pass."""
        analyses = self.analyse(documents)
        rule_scores = [self.rule_scores(a) for a in analyses]
        if self.model is None:
            return [self._rules_only(a, scores) for a, scores in zip(analyses, rule_scores, strict=True)]
        probabilities = self.model.predict([a.lemmas for a in analyses])
        return [self._combined(a, scores, probs)
                for a, scores, probs in zip(analyses, rule_scores, probabilities, strict=True)]

    def analyse(self, documents: Iterable[Sequence[tuple[str, str]]]) -> list[Analysis]:
        """Run spaCy over every section of every document and collect cue matches and lemmas."""
        documents = [list(doc) for doc in documents]
        texts = (lower_same_length(text) for doc in documents for _key, text in doc)
        parsed = iter(self.nlp.pipe(texts, batch_size=256))
        analyses = []
        for doc in documents:
            analysis = Analysis(hits={}, lemmas=[], sentences=[])
            for key, text in doc:
                spacy_doc = next(parsed)
                weight = TITLE_WEIGHT if key == "title" else self.taxonomy.section_weights.get(key, 1.0)
                for label_id, sentence in self._matches(spacy_doc):
                    evidence = clean_sentence(text[sentence.start_char : sentence.end_char])
                    analysis.hits.setdefault(label_id, []).append((weight, evidence))
                analysis.lemmas += [t.lemma_ for t in spacy_doc if not t.is_space]
                if self.model is not None:
                    for sentence in spacy_doc.sents:
                        analysis.sentences.append((
                            clean_sentence(text[sentence.start_char : sentence.end_char]),
                            [t.lemma_ for t in sentence if not t.is_space],
                        ))
            analyses.append(analysis)
        return analyses

    def rule_scores(self, analysis: Analysis) -> dict[str, float]:
        """Return the rules' score of every label they found."""
        return {label: rule_score(found, self.taxonomy.cue_weight) for label, found in analysis.hits.items()}

    def _matches(self, doc: Doc) -> list[tuple[str, Span]]:
        """Return (label, sentence) once per label and sentence whose cue is not negated."""
        vocab = self.nlp.vocab.strings
        negatives = {(vocab[m], doc[s].sent.start) for m, s, _e in self.negative_matcher(doc)}
        found: dict[tuple[str, int], Span] = {}
        for matcher in self.cue_matchers:
            for match_id, start, _end in matcher(doc):
                label_id = vocab[match_id]
                sentence = doc[start].sent
                key = (label_id, sentence.start)
                if key in found or key in negatives or self._negated(doc, sentence, start):
                    continue
                found[key] = sentence
        return [(label_id, sentence) for (label_id, _), sentence in found.items()]

    @staticmethod
    def _negated(doc: Doc, sentence: Span, start: int) -> bool:
        for token in doc[max(sentence.start, start - NEGATION_WINDOW) : start]:
            if token.lower_ in NEGATORS:
                following = doc[token.i + 1].lower_ if token.i + 1 < len(doc) else ""
                if not (token.lower_ == "no" and following in NOT_NEGATING_AFTER_NO):
                    return True
        return bool(RULED_OUT.search(sentence.text))

    @staticmethod
    def _evidence(found: Sequence[tuple[float, str]]) -> list[str]:
        evidence: list[str] = []
        for _, sentence in sorted(found, key=lambda item: -item[0]):
            if sentence and sentence not in evidence:
                evidence.append(sentence)
        return evidence[:MAX_EVIDENCE]

    def _rules_only(self, analysis: Analysis, scores: dict[str, float]) -> list[Suggestion]:
        suggestions = [
            Suggestion(label, self.kinds[label], round(score, 4), self._evidence(analysis.hits[label]))
            for label, score in scores.items()
            if score >= self.taxonomy.threshold_for(label)
        ]
        return sorted(suggestions, key=lambda s: (-s.score, s.label))

    def _combined(self, analysis: Analysis, scores: dict[str, float], probs: dict[str, float]) -> list[Suggestion]:
        weight = float(self.model.meta.get("rule_weight", 0.5))
        thresholds = self.model.meta.get("thresholds", {})
        suggestions = []
        for label in self.kinds:
            rule = scores.get(label, 0.0)
            prob = probs.get(label, 0.0) if label in self.model_labels else rule
            score = weight * rule + (1 - weight) * prob
            if score < thresholds.get(label, self.taxonomy.threshold_for(label)):
                continue
            evidence = self._evidence(analysis.hits.get(label, []))
            method = "rules+model" if evidence else "model"
            if not evidence:
                evidence = self._model_evidence(analysis, label)
            if evidence:  # a tag nobody can check is not shown
                suggestions.append(Suggestion(label, self.kinds[label], round(score, 4), evidence, method))
        return sorted(suggestions, key=lambda s: (-s.score, s.label))

    def _model_evidence(self, analysis: Analysis, label: str) -> list[str]:
        """Return the sentence the model finds most typical of label, for tags the rules did not see."""
        candidates = [(text, lemmas) for text, lemmas in analysis.sentences if len(lemmas) >= 4]
        if not candidates:
            return []
        probs = self.model.predict([lemmas for _, lemmas in candidates])
        best = max(range(len(candidates)), key=lambda i: probs[i].get(label, 0.0))
        return [candidates[best][0]]


# The name the first version used; kept so callers that build a rules-only tagger keep working.
RuleTagger = Tagger
