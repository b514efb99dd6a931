"""A statistical tagger: spaCy textcat_multilabel (bag of words), trained by us on our own labels.

The model reads a document as a bag of lemmas, each counted with the weight of the section it sits in, so
a word in the root cause counts more than one in the background. The features come straight from the
parsed document's lemma ids: no second Doc is built, and the classifier never runs as a pipeline step.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy
import spacy
from spacy.attrs import LEMMA
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch
from thinc.api import SGD

from nlp.pipeline import build_pipeline

TEXTCAT = "textcat_multilabel"
TEXTCAT_CONFIG = {
    "model": {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": False,
        "ngram_size": 1,
        "no_output_layer": False,
        "length": 32768,
    }
}
# Plain stochastic gradient descent, not spaCy's default Adam. Adam gives every word its own step size, so a word
# seen in one or two training postmortems gets a weight as large as a word seen in a hundred, and the model
# learns its training files by heart. With plain steps a word's weight grows with how often it helps. On the
# seed files' cross-validation and on the 40 holdout files both, categories gained several points (README).
LEARN_RATE = 0.01
# Models saved before bags were scaled and scores stacked used other file names, so they are not loaded.
META_FILE = "kb-model-stacked.json"
BAG_LENGTH = 10.0  # every bag's Euclidean length after scaling

Bag = tuple[numpy.ndarray, numpy.ndarray]  # distinct lemma ids, and their weighted counts


def bag_of_lemmas(doc: Doc, weights: numpy.ndarray | None = None) -> Bag:
    """Return the document's distinct lemma ids and log(1 + count), each token counted with its weight.

    The logarithm keeps a word repeated throughout a long document from outweighing everything else.
    """
    ids = doc.to_array(LEMMA)
    if weights is None:
        keys, counts = numpy.unique(ids, return_counts=True)
    else:
        keys, positions = numpy.unique(ids, return_inverse=True)
        counts = numpy.bincount(positions, weights=weights, minlength=len(keys))
    return keys, numpy.log1p(counts).astype("f")


class TextModel:
    """A trained textcat_multilabel, in a copy of the tagger's pipeline so that it saves and loads as one folder."""

    def __init__(self, nlp: Language, labels: Sequence[str], meta: dict | None = None):
        self.nlp = nlp
        self.textcat = nlp.get_pipe(TEXTCAT)
        self.labels = list(labels)
        self.meta = meta or {}
        layers = {layer.name: layer for layer in self.textcat.model.walk()}
        self._linear, self._output = layers["resizable(sparse_linear)"], layers["logistic"]

    def predict(self, bags: Sequence[Bag]) -> list[dict[str, float]]:
        """Return each bag of lemmas' probability per label."""
        if not bags:
            return []
        return self._scores(_features(bags))

    def predict_spans(self, doc: Doc, bounds: Sequence[tuple[int, int]]) -> list[dict[str, float]]:
        """Return the probability per label of each token range of a parsed document, as if each were a text."""
        if not bounds:
            return []
        # Count every (range, lemma) pair at once: one sort over the document instead of a count per sentence.
        spans = numpy.asarray(bounds, dtype="int64").reshape(-1, 2)
        sizes = spans[:, 1] - spans[:, 0]
        span_of = numpy.repeat(numpy.arange(len(spans)), sizes)
        shift = spans[:, 0] - (numpy.cumsum(sizes) - sizes)  # from a token's place among all ranges to its index
        lemmas = doc.to_array(LEMMA)[numpy.arange(int(sizes.sum())) + shift[span_of]]
        order = numpy.lexsort((lemmas, span_of))
        span_of, lemmas = span_of[order], lemmas[order]
        first = numpy.ones(len(order), dtype=bool)
        first[1:] = (span_of[1:] != span_of[:-1]) | (lemmas[1:] != lemmas[:-1])
        starts = numpy.flatnonzero(first)
        counts = numpy.diff(numpy.append(starts, len(order)))
        lengths = numpy.bincount(span_of[starts], minlength=len(spans))
        return self._scores((lemmas[starts].astype("uint64"), _scaled(numpy.log1p(counts), lengths),
                             lengths.astype("int32")))

    def _scores(self, features: tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]) -> list[dict[str, float]]:
        scores = self._output.predict(self._linear.predict(features))
        return [dict(zip(self.textcat.labels, row, strict=True)) for row in scores.tolist()]

    def save(self, path: str | Path) -> None:
        """Write the model to a folder that load() reads."""
        path = Path(path)
        self.nlp.to_disk(path)
        (path / META_FILE).write_text(json.dumps({"labels": self.labels, **self.meta}, indent=2))

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Return whether path holds a saved model."""
        return (Path(path) / META_FILE).is_file()

    @classmethod
    def load(cls, path: str | Path) -> TextModel:
        """Read a model written by save()."""
        path = Path(path)
        meta = json.loads((path / META_FILE).read_text())
        return cls(spacy.load(path), meta.pop("labels"), meta)


def _features(bags: Sequence[Bag]) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Return bags in the (keys, values, lengths) form that spaCy's bag-of-words layer reads."""
    lengths = numpy.asarray([len(keys) for keys, _ in bags])
    counts = numpy.concatenate([counts for _, counts in bags])
    return (numpy.concatenate([keys for keys, _ in bags]).astype("uint64"), _scaled(counts, lengths),
            lengths.astype("int32"))


def _scaled(counts: numpy.ndarray, lengths: numpy.ndarray) -> numpy.ndarray:
    """Scale each bag's counts (bags given end to end, with their sizes) to the same Euclidean length.

    A long write-up then does not score higher only for being long.
    """
    counts = counts.astype("f")
    bag = numpy.repeat(numpy.arange(len(lengths)), lengths)
    norms = numpy.sqrt(numpy.bincount(bag, weights=counts * counts, minlength=len(lengths)))
    factors = numpy.divide(BAG_LENGTH, norms, out=numpy.ones_like(norms), where=norms > 0)
    return (counts * factors[bag]).astype("f")


def train_model(
    bags: Sequence[Bag],
    label_sets: Sequence[set[str]],
    labels: Sequence[str],
    *,
    epochs: int = 25,
    seed: int = 7,
) -> TextModel:
    """Train a multi-label classifier on bags of lemmas and their label sets."""
    spacy.util.fix_random_seed(seed)
    nlp = build_pipeline()
    textcat = nlp.add_pipe(TEXTCAT, config=TEXTCAT_CONFIG)
    for label in labels:
        textcat.add_label(label)
    sample = Example.from_dict(nlp.make_doc("postmortem"), {"cats": {label: 0.0 for label in labels}})
    nlp.initialize(lambda: [sample])
    optimizer = SGD(LEARN_RATE, L2=0.0, grad_clip=0.0)
    model = TextModel(nlp, labels)
    truths = numpy.asarray([[float(label in gold) for label in textcat.labels] for gold in label_sets], dtype="f")
    order = list(range(len(bags)))
    rng = random.Random(seed)
    for _epoch in range(epochs):
        rng.shuffle(order)
        for batch in minibatch(order, size=16):
            hidden, backprop_linear = model._linear.begin_update(_features([bags[i] for i in batch]))
            scores, backprop_output = model._output.begin_update(hidden)
            # The gradient textcat_multilabel itself uses: predicted minus true, per label.
            backprop_linear(backprop_output(scores - truths[batch]))
            textcat.model.finish_update(optimizer)
    return model
