"""Compare the search index with the database, which is the truth, and repair the index from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlmodel import select

from kb.context import KnowledgeBase
from kb.models import Postmortem
from kb.reindex import BATCH, index_documents, index_postmortems
from kb.storage import postmortem_batches

SHOWN_SLUGS = 10  # per line of the text report; the JSON report lists them all


@dataclass
class Diagnosis:
    postmortems: int  # rows in the database
    documents: int  # documents in the index
    missing: list[str]  # in the database, not in the index
    extra: list[str]  # in the index, not in the database
    marked: list[str]  # still marked for reindexing
    stale: list[str]  # in both, but the index document differs from what the database gives

    @property
    def problems(self) -> int:
        return len(set(self.missing) | set(self.extra) | set(self.marked) | set(self.stale))

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


@dataclass
class Checkup:
    found: Diagnosis
    reindexed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    after: Diagnosis | None = None  # the check again after a repair

    @property
    def remaining(self) -> Diagnosis:
        return self.after or self.found

    def as_dict(self) -> dict:
        return {"found": self.found.as_dict(), "reindexed": self.reindexed, "deleted": self.deleted,
                "after": self.after.as_dict() if self.after else None}


def diagnose(*, kb: KnowledgeBase) -> Diagnosis:
    """Compare every postmortem with its index document, batch by batch."""
    indexed = kb.index.slugs()
    stored_slugs, missing, marked, stale = set(), [], [], []
    with kb.session() as session, kb.index.searcher() as searcher:
        stored_fields = set(searcher.schema.stored_names())
        for rows in postmortem_batches(session, BATCH):
            for row, document in zip(rows, index_documents(session=session, postmortems=rows), strict=True):
                stored_slugs.add(row.slug)
                if row.needs_reindex:
                    marked.append(row.slug)
                if row.slug not in indexed:
                    missing.append(row.slug)
                elif searcher.document(slug=row.slug) != {k: v for k, v in document.items() if k in stored_fields}:
                    stale.append(row.slug)
        documents = searcher.doc_count()
    return Diagnosis(postmortems=len(stored_slugs), documents=documents, missing=sorted(missing),
                     extra=sorted(indexed - stored_slugs), marked=sorted(marked), stale=sorted(stale))


def repair(*, kb: KnowledgeBase, diagnosis: Diagnosis) -> tuple[list[str], list[str]]:
    """Reindex the missing, marked and stale postmortems and delete the extra documents; return both lists."""
    slugs = sorted(set(diagnosis.missing) | set(diagnosis.marked) | set(diagnosis.stale))
    for start in range(0, len(slugs), BATCH):
        with kb.session() as session:
            ids = list(session.exec(select(Postmortem.id).where(Postmortem.slug.in_(slugs[start : start + BATCH]))))
        index_postmortems(kb, ids)
    if diagnosis.extra:
        kb.index.delete(diagnosis.extra)
    return slugs, diagnosis.extra


def check_kb(*, kb: KnowledgeBase, fix: bool = False) -> Checkup:
    """Check the index against the database; with fix, repair what differs and check again."""
    found = diagnose(kb=kb)
    if not fix or found.ok:
        return Checkup(found=found)
    reindexed, deleted = repair(kb=kb, diagnosis=found)
    return Checkup(found=found, reindexed=reindexed, deleted=deleted, after=diagnose(kb=kb))


def format_diagnosis(diagnosis: Diagnosis) -> list[str]:
    """Return the lines of a diagnosis as a table."""
    lines = [f"{'postmortems in the database':<28} {diagnosis.postmortems}",
             f"{'documents in the index':<28} {diagnosis.documents}"]
    for name, slugs in (("missing from the index", diagnosis.missing), ("not in the database", diagnosis.extra),
                        ("marked for reindexing", diagnosis.marked), ("stale in the index", diagnosis.stale)):
        shown = ", ".join(slugs[:SHOWN_SLUGS])
        if len(slugs) > SHOWN_SLUGS:
            shown += f" and {len(slugs) - SHOWN_SLUGS} more"
        lines.append(f"{name:<28} {len(slugs):<6} {shown}".rstrip())
    return lines


def format_checkup(checkup: Checkup) -> str:
    """Return a checkup as text: what was found, what was repaired, and what remains."""
    lines = format_diagnosis(checkup.found)
    if checkup.after is not None:
        lines += ["", f"reindexed {len(checkup.reindexed)}, deleted {len(checkup.deleted)}; checked again:",
                  *format_diagnosis(checkup.after)]
    remaining = checkup.remaining.problems
    if not remaining:
        lines.append("ok: the index matches the database")
    elif checkup.after is None:
        lines.append(f"{remaining} problems; `kb doctor --fix` repairs them")
    else:
        lines.append(f"{remaining} problems remain")
    return "\n".join(lines)
