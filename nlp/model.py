"""A statistical tagger: spaCy textcat_multilabel (bag of words), trained by us on our own labels."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch

from nlp.pipeline import build_pipeline

TEXTCAT_CONFIG = {
    "model": {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": False,
        "ngram_size": 1,
        "no_output_layer": False,
        "length": 32768,
    }
}
META_FILE = "kb-model.json"


class TextModel:
    """The tagger's pipeline with a trained textcat_multilabel at its end."""

    def __init__(self, nlp: Language, labels: Sequence[str], meta: dict | None = None):
        self.nlp = nlp
        self.textcat = nlp.get_pipe("textcat_multilabel")
        self.labels = list(labels)
        self.meta = meta or {}

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, float]]:
        """Return each parsed document's probability per label."""
        return [dict(doc.cats) for doc in self.textcat.pipe(docs, batch_size=256)]

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


def train_model(
    docs: Sequence[Doc],
    label_sets: Sequence[set[str]],
    labels: Sequence[str],
    *,
    epochs: int = 25,
    seed: int = 7,
    dropout: float = 0.2,
) -> TextModel:
    """Train a multi-label classifier on documents parsed by the tagger's pipeline and their label sets."""
    spacy.util.fix_random_seed(seed)
    nlp = build_pipeline()
    textcat = nlp.add_pipe("textcat_multilabel", config=TEXTCAT_CONFIG)
    for label in labels:
        textcat.add_label(label)
    examples = [
        Example.from_dict(doc, {"cats": {label: float(label in gold) for label in labels}})
        for doc, gold in zip(docs, label_sets, strict=True)
    ]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _epoch in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=16):
            nlp.update(batch, sgd=optimizer, drop=dropout)
    return TextModel(nlp, labels)
