"""Teach the tagger from human decisions, and apply a changed tagger or taxonomy to stored postmortems."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass

from sqlmodel import select

from kb.context import KnowledgeBase
from kb.errors import KBError
from kb.evaluate import PLURAL
from kb.models import Postmortem, PostmortemLabel
from kb.records import merge_tags
from kb.reindex import index_postmortems
from nlp.tagger import Tagger
from nlp.training import fit_model

BATCH = 200
MIN_TRAINING_DOCUMENTS = 10


def stored_sections(postmortem: Postmortem) -> list[tuple[str, str]]:
    """Return the (section key, text) pairs of a stored postmortem, as the tagger reads them."""
    return [("title", postmortem.title)] + list((postmortem.sections or {}).items())


def training_data(kb: KnowledgeBase) -> tuple[list[list[tuple[str, str]]], list[set[str]]]:
    """Return the documents that carry human-confirmed labels, and those labels."""
    with kb.session() as session:
        rows = session.exec(
            select(Postmortem, PostmortemLabel.label_id)
            .join(PostmortemLabel, PostmortemLabel.postmortem_id == Postmortem.id)
            .where(PostmortemLabel.status == "confirmed")
            .order_by(Postmortem.id)
        ).all()
    documents: dict[int, list[tuple[str, str]]] = {}
    labels: dict[int, set[str]] = {}
    for postmortem, label_id in rows:
        documents.setdefault(postmortem.id, stored_sections(postmortem))
        labels.setdefault(postmortem.id, set()).add(label_id)
    return list(documents.values()), [labels[pid] for pid in documents]


@dataclass
class TrainingSummary:
    documents: int
    held_out: dict[str, dict]  # kind -> micro precision, recall, F1 on the training's inner folds
    previous: dict | None = None  # the replaced model's documents and held_out, when it recorded them

    def quality_lines(self) -> list[str]:
        """Return the held-out figures of the new model and of the one it replaced, as lines to print."""
        def f1s(held_out: dict[str, dict]) -> str:
            return ", ".join(f"{PLURAL[kind]} {score['f1']:.2f}" for kind, score in held_out.items())

        lines = []
        if self.held_out:
            lines.append(f"held-out micro-F1: {f1s(self.held_out)} (each inner fold scored by what the others fitted)")
        if self.previous:
            lines.append(f"  the model it replaces: {f1s(self.previous['held_out'])} "
                         f"on {self.previous['documents']} postmortems")
        return lines


def train_tagger(kb: KnowledgeBase) -> TrainingSummary:
    """Train the model on every human-confirmed label, save it in the data folder and use it from now on."""
    documents, label_sets = training_data(kb)
    if len(documents) < MIN_TRAINING_DOCUMENTS:
        raise KBError(f"only {len(documents)} postmortems have human-confirmed labels; "
                      f"training needs at least {MIN_TRAINING_DOCUMENTS}")
    rules = Tagger(kb.tagger.taxonomy)
    model = fit_model(rules, documents, label_sets)
    target = kb.config.model_dir
    replaced = kb.tagger.model.meta if kb.tagger.model is not None else {}
    previous = {key: replaced[key] for key in ("documents", "held_out")} if "held_out" in replaced else None
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    # Swap the folders so a reader never sees half a model.
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    kb.reload_tagger()
    return TrainingSummary(documents=len(documents), held_out=model.meta.get("held_out", {}), previous=previous)


def retag_all(kb: KnowledgeBase) -> dict[str, dict[str, int]]:
    """Tag every stored postmortem again, keeping human decisions; return tags added and removed per label."""
    changes: dict[str, Counter] = {"added": Counter(), "removed": Counter()}
    last_id = 0
    while True:
        with kb.session() as session:
            rows = list(session.exec(
                select(Postmortem).where(Postmortem.id > last_id).order_by(Postmortem.id).limit(BATCH)
            ))
            if not rows:
                break
            last_id = rows[-1].id
            suggestions = kb.tagger.tag_many(stored_sections(pm) for pm in rows)
            ids = [pm.id for pm in rows]
            before = _auto_labels(session, ids)
            for postmortem, suggested in zip(rows, suggestions, strict=True):
                merge_tags(session=session, postmortem=postmortem, human_labels={}, suggestions=suggested,
                           labels=kb.labels)
                postmortem.needs_reindex = True
                session.add(postmortem)
            session.flush()
            after = _auto_labels(session, ids)
            for pid in ids:
                changes["added"].update(after[pid] - before[pid])
                changes["removed"].update(before[pid] - after[pid])
            session.commit()
        index_postmortems(kb, [pm.id for pm in rows])
    return {kind: dict(sorted(counter.items())) for kind, counter in changes.items()}


def _auto_labels(session, postmortem_ids: list[int]) -> dict[int, set[str]]:
    """Return the machine's labels of each postmortem, in one query for the whole batch."""
    labels: dict[int, set[str]] = {pid: set() for pid in postmortem_ids}
    for pid, label_id in session.exec(
        select(PostmortemLabel.postmortem_id, PostmortemLabel.label_id).where(
            PostmortemLabel.postmortem_id.in_(postmortem_ids), PostmortemLabel.source == "auto"
        )
    ):
        labels[pid].add(label_id)
    return labels
