"""A statistical tagger: spaCy textcat_multilabel (bag of words), trained by us on our own labels.

The model reads a document as a bag of lemmas, each counted with the weight of the section it sits in, so
a word in the root cause counts more than one in the background. The features come straight from the
parsed document's lemma ids: no second Doc is built, and the classifier never runs as a pipeline step.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy
import spacy
from spacy.attrs import LEMMA
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch

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
        scores = self._output.predict(self._linear.predict(_features(bags)))
        return [dict(zip(self.textcat.labels, row, strict=True)) for row in scores.tolist()]

    def predict_spans(self, doc: Doc, bounds: Sequence[tuple[int, int]]) -> list[dict[str, float]]:
        """Return the probability per label of each token range of a parsed document, as if each were a text."""
        ids = doc.to_array(LEMMA).tolist()
        bags = []
        for start, end in bounds:  # ranges are sentences: a Counter beats numpy.unique on a dozen words
            counts = Counter(ids[start:end])
            bags.append((numpy.fromiter(counts.keys(), "uint64", len(counts)),
                         numpy.log1p(numpy.fromiter(counts.values(), "f", len(counts)))))
        return self.predict(bags)

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
    """Return bags in the (keys, values, lengths) form that spaCy's bag-of-words layer reads.

    Each bag is scaled to the same length, so a long write-up does not score higher only for being long.
    """
    keys = numpy.concatenate([keys for keys, _ in bags]).astype("uint64")
    values = numpy.concatenate([_scaled(counts) for _, counts in bags]).astype("f")
    return keys, values, numpy.asarray([len(keys) for keys, _ in bags], dtype="int32")


def _scaled(counts: numpy.ndarray) -> numpy.ndarray:
    norm = float(numpy.sqrt(numpy.dot(counts, counts)))
    return counts * (BAG_LENGTH / norm) if norm else counts


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
    optimizer = nlp.initialize(lambda: [sample])
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
