"""The tagger: cue-phrase rules from the taxonomy, combined with our trained model when there is one."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy
from spacy.attrs import IDX
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from nlp.model import TEXTCAT, Bag, TextModel, bag_of_lemmas
from nlp.pipeline import SECTION_SEPARATOR, build_pipeline, lower_same_length, separate_blocks
from nlp.taxonomy import Taxonomy

# Words that, shortly before a cue in the same sentence, say the cue does not hold.
NEGATORS = frozenset({"not", "n't", "never", "without", "no", "neither", "nor", "none"})
# "no" that does not negate what follows: "no one owned", "no longer retrained".
NOT_NEGATING_AFTER_NO = frozenset({"one", "longer", "single", "clear", "owner"})
NEGATION_WINDOW = 5
CLAUSE_BREAKS = frozenset({"and", "but", "so", "because", "which", "while", "then", ",", ";", ":"})
# Phrases that anywhere in a sentence rule out, or only imagine, what it mentions.
RULED_OUT = re.compile(
    r"\b(ruled? out|ruling out|was not the cause|were not the cause|wasn't the cause|weren't the cause|"
    r"not (?:a|the) (?:factor|cause|problem|issue|culprit)|no evidence|red herring|unrelated|"
    r"first suspected|initially suspected|briefly suspected|could have|would have|might have|"
    r"hypothesis|theory|suspicion|suspected|set (?:it|that|this|\w+) aside|turned out not|ruled that out)\b"
)
PROB_FLOOR = 1e-4  # keeps the model's log-odds finite
MAX_EVIDENCE = 3
MIN_EVIDENCE_TOKENS = 4
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
    cues: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    """What the rules found in one document, with its text and its parsed lower-case copy."""

    hits: dict[str, list[tuple[float, str]]]
    text: str
    doc: Doc
    sections: list[tuple[int, str]]  # where each section starts in text, and its key
    cues: dict[str, set[str]] = field(default_factory=dict)  # label -> the words that matched its cues


LIST_MARK = re.compile(r"^\s*(?:[-*+>]|\d+[.)]|\|)\s*")
# Emphasis marks and backticks go; underscores inside a word (a code name such as sme_raw) stay.
EMPHASIS = re.compile(r"`+|(?<!\w)[*_]{1,3}|[*_]{1,3}(?!\w)")
# A sentence that ends a list item can carry the next item's mark ("... written down. -", "- [ ]").
NEXT_ITEM_MARK = re.compile(r" (?:[-*+]|\d+[.)])(?: ?\[[ xX]?\])?$")
WHITE_SPACE = re.compile(r"\s+")


def clean_sentence(text: str) -> str:
    """Return a sentence without markdown list marks, emphasis and extra white space."""
    text = LIST_MARK.sub("", text.strip(), count=1)
    if "*" in text or "_" in text or "`" in text:
        text = EMPHASIS.sub("", text)
    text = WHITE_SPACE.sub(" ", text).strip(" |")
    tail = NEXT_ITEM_MARK.search(text, max(0, len(text) - 10))  # the mark is in the last few characters
    return text[: tail.start()].rstrip(" |") if tail else text


def join_sections(sections: Sequence[tuple[str, str]]) -> tuple[str, list[tuple[int, str]]]:
    """Return the sections' texts joined by blank lines, and where each section starts."""
    parts, starts, offset = [], [], 0
    for key, text in sections:
        text = separate_blocks(text)
        starts.append((offset, key))
        parts.append(text)
        offset += len(text) + len(SECTION_SEPARATOR)
    return SECTION_SEPARATOR.join(parts), starts or [(0, "summary")]


def stack_inputs(rule: float, prob: float) -> list[float]:
    """Return what a label's stacking weights multiply: the rules' score, the model's log-odds, and 1."""
    prob = min(max(prob, PROB_FLOOR), 1.0 - PROB_FLOOR)
    return [rule, math.log(prob / (1.0 - prob)), 1.0]


def stacked(weights: Sequence[float] | None, rule: float, prob: float) -> float:
    """Return a label's score from the rules' score and the model's probability, weighed as fitted for it.

    A label without fitted weights (too few examples of it) takes the mean of the two.
    """
    if weights is None:
        return (rule + prob) / 2
    total = sum(w * x for w, x in zip(weights, stack_inputs(rule, prob), strict=True))
    return 0.5 * (1.0 + math.tanh(total / 2))  # the logistic function, without overflow for large totals


def rule_score(found: Sequence[tuple[float, str]]) -> float:
    """Combine weighted matching sentences into one score: each is independent evidence saturating towards 1."""
    miss = 1.0
    for weight, _sentence in found:
        miss *= 1.0 - min(MAX_SENTENCE_WEIGHT, weight)
    return 1.0 - miss


class Tagger:
    """Tag postmortem sections with the taxonomy's labels."""

    def __init__(self, taxonomy: Taxonomy, model: TextModel | None = None):
        self.taxonomy = taxonomy
        self.model = model
        # With a model, its pipeline parses text for rules and model alike; the classifier reads the parse's
        # lemmas directly (TextModel.predict), so it never runs as a pipeline step.
        self.nlp = model.nlp if model is not None else build_pipeline()
        self.skip = [TEXTCAT] if model is not None else []
        self.kinds = {label.id: label.kind for label in taxonomy.labels}
        # Text is lower-cased before parsing and lemmas are looked up from the lower-case form, so a cue that
        # matches on lower case also matches on lemmas: one lemma matcher finds both.
        self.cue_matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        self.negative_matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        # Matcher keys carry the strength of the cue: "label" for cues, "label~weak" for weak cues.
        self.cue_weights: dict[str, tuple[str, float]] = {}
        for label in taxonomy.labels:
            for key, cues, weight in ((label.id, label.cues, taxonomy.cue_weight),
                                      (f"{label.id}~weak", label.weak, taxonomy.weak_cue_weight)):
                if not cues:
                    continue
                self.cue_weights[key] = (label.id, weight)
                patterns = list(self.nlp.pipe((lower_same_length(cue) for cue in cues), disable=self.skip))
                self.cue_matcher.add(key, patterns)
            if label.negative:
                self.negative_matcher.add(
                    label.id, list(self.nlp.pipe((lower_same_length(c) for c in label.negative), disable=self.skip))
                )
        if model is not None:
            self.model_labels = [label for label in model.labels if label in self.kinds]

    def tag(self, sections: Sequence[tuple[str, str]]) -> list[Suggestion]:
        """Tag one document given as (section key, text) pairs."""
        return self.tag_many([sections])[0]

    def tag_many(self, documents: Iterable[Sequence[tuple[str, str]]]) -> list[list[Suggestion]]:
        """Tag many documents, each a list of (section key, text) pairs, in one spaCy pass."""
        analyses = self.analyse(documents)
        rule_scores = [self.rule_scores(a) for a in analyses]
        if self.model is None:
            return [self._rules_only(a, scores) for a, scores in zip(analyses, rule_scores, strict=True)]
        probabilities = self.model.predict([self.model_input(a) for a in analyses])
        return [self._combined(a, scores, probs)
                for a, scores, probs in zip(analyses, rule_scores, probabilities, strict=True)]

    def analyse(self, documents: Iterable[Sequence[tuple[str, str]]]) -> list[Analysis]:
        """Parse each document once and collect its cue matches, weighted by the section they sit in."""
        joined = [join_sections(doc) for doc in documents]
        lowered = [lower_same_length(text) for text, _ in joined]
        parsed = self.nlp.pipe(lowered, batch_size=64, disable=self.skip)
        analyses = []
        for (text, starts), lower, doc in zip(joined, lowered, parsed, strict=True):
            offsets = [offset for offset, _ in starts]
            analysis = Analysis({}, text, doc, starts)
            for label_id, sentence, cue_weight, matched in self._matches(doc, lower):
                key = starts[bisect_right(offsets, sentence.start_char) - 1][1]
                weight = self._section_weight(key)
                evidence = clean_sentence(text[sentence.start_char : sentence.end_char])
                analysis.hits.setdefault(label_id, []).append((cue_weight * weight, evidence))
                analysis.cues.setdefault(label_id, set()).add(matched)
            analyses.append(analysis)
        return analyses

    def model_input(self, analysis: Analysis) -> Bag:
        """Return the document's bag of lemmas for the model, each word weighted by its section."""
        offsets = numpy.asarray([offset for offset, _ in analysis.sections])
        weights = numpy.asarray([self._section_weight(key) for _, key in analysis.sections], dtype="f")
        section = numpy.searchsorted(offsets, analysis.doc.to_array(IDX), side="right") - 1
        return bag_of_lemmas(analysis.doc, weights[section])

    def _section_weight(self, key: str) -> float:
        return TITLE_WEIGHT if key == "title" else self.taxonomy.section_weights.get(key, 1.0)

    def rule_scores(self, analysis: Analysis) -> dict[str, float]:
        """Return the rules' score of every label they found."""
        return {label: rule_score(found) for label, found in analysis.hits.items()}

    def _matches(self, doc: Doc, text: str) -> list[tuple[str, Span, float, str]]:
        """Return (label, sentence, cue weight, matched words) once per label and sentence, for cues not negated.

        text is the document's own text (Doc.text would join every token again).
        """
        vocab = self.nlp.vocab.strings
        sentences = list(doc.sents)
        starts = [sentence.start for sentence in sentences]
        ruled_out: dict[int, bool] = {}

        def sentence_at(i: int) -> Span:
            return sentences[bisect_right(starts, i) - 1]

        negatives = {(vocab[m], sentence_at(s).start) for m, s, _e in self.negative_matcher(doc)}
        found: dict[tuple[str, int], tuple[Span, float, str]] = {}
        for match_id, start, end in self.cue_matcher(doc):
            label_id, weight = self.cue_weights[vocab[match_id]]
            sentence = sentence_at(start)
            key = (label_id, sentence.start)
            if key in found and found[key][1] >= weight:
                continue
            if key in negatives or self._negated(doc, sentence, start):
                continue
            if sentence.start not in ruled_out:
                ruled_out[sentence.start] = bool(RULED_OUT.search(text, sentence.start_char, sentence.end_char))
            if ruled_out[sentence.start]:
                continue
            found[key] = (sentence, weight, doc[start:end].text)
        return [(label_id, *match) for (label_id, _), match in found.items()]

    @staticmethod
    def _negated(doc: Doc, sentence: Span, start: int) -> bool:
        """Return whether a negating word shortly before start, in the same clause, cancels the cue."""
        for token in reversed(doc[max(sentence.start, start - NEGATION_WINDOW) : start]):
            if token.lower_ in CLAUSE_BREAKS:
                break  # "without retraining and went stale": the negation stays in its own clause
            if token.lower_ in NEGATORS:
                following = doc[token.i + 1].lower_ if token.i + 1 < len(doc) else ""
                if not (token.lower_ == "no" and following in NOT_NEGATING_AFTER_NO):
                    return True
        return False

    @staticmethod
    def _evidence(found: Sequence[tuple[float, str]]) -> list[str]:
        evidence: list[str] = []
        for _, sentence in sorted(found, key=lambda item: -item[0]):
            if sentence and sentence not in evidence:
                evidence.append(sentence)
        return evidence[:MAX_EVIDENCE]

    def _rules_only(self, analysis: Analysis, scores: dict[str, float]) -> list[Suggestion]:
        suggestions = [
            Suggestion(label, self.kinds[label], round(score, 4), self._evidence(analysis.hits[label]),
                       cues=sorted(analysis.cues[label]))
            for label, score in scores.items()
            if score >= self.taxonomy.threshold_for(label)
        ]
        return sorted(suggestions, key=lambda s: (-s.score, s.label))

    def _combined(self, analysis: Analysis, scores: dict[str, float], probs: dict[str, float]) -> list[Suggestion]:
        stacks = self.model.meta.get("stacks", {})
        thresholds = self.model.meta.get("thresholds", {})
        suggestions = []
        sentence_probs = None
        for label in self.kinds:
            rule = scores.get(label, 0.0)
            prob = probs.get(label, 0.0) if label in self.model_labels else rule
            score = stacked(stacks.get(label), rule, prob)
            if score < thresholds.get(label, self.taxonomy.threshold_for(label)):
                continue
            evidence = self._evidence(analysis.hits.get(label, []))
            method = "rules+model" if evidence else "model"
            if not evidence:
                if sentence_probs is None:
                    sentence_probs = self._sentence_probabilities(analysis)
                evidence = self._model_evidence(analysis, sentence_probs, label)
            if evidence:  # a tag nobody can check is not shown
                suggestions.append(Suggestion(label, self.kinds[label], round(score, 4), evidence, method,
                                              sorted(analysis.cues.get(label, ()))))
        return sorted(suggestions, key=lambda s: (-s.score, s.label))

    def _sentence_probabilities(self, analysis: Analysis) -> list[tuple[Span, dict[str, float]]]:
        """Return the model's label probabilities for each sentence long enough to stand as evidence."""
        sentences = [sentence for sentence in analysis.doc.sents if len(sentence) >= MIN_EVIDENCE_TOKENS]
        probabilities = self.model.predict_spans(analysis.doc, [(s.start, s.end) for s in sentences])
        return list(zip(sentences, probabilities, strict=True))

    def _model_evidence(self, analysis: Analysis, sentence_probs, label: str) -> list[str]:
        """Return the sentence the model finds most typical of label, for tags the rules did not see."""
        if not sentence_probs:
            return []
        sentence, _ = max(sentence_probs, key=lambda item: item[1].get(label, 0.0))
        return [clean_sentence(analysis.text[sentence.start_char : sentence.end_char])]
