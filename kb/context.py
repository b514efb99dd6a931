"""The knowledge base as one object: configuration, database engine, search index and tagger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from kb.config import Config
from kb.index import SearchIndex
from kb.schema import init_db
from kb.storage import make_engine, sync_labels
from kb.trends import TrendsCache

LABEL_SYNC_ATTEMPTS = 3


@dataclass
class KnowledgeBase:
    """What every command and request needs; the tagger is built on first use by its factory."""

    config: Config
    engine: Engine
    index: SearchIndex
    labels: dict[str, str]  # label id -> kind
    descriptions: dict[str, str]
    tagger_factory: Callable[[], Any]
    trends_cache: TrendsCache = field(default_factory=TrendsCache, repr=False)
    _tagger: Any = field(default=None, repr=False)

    @property
    def tagger(self) -> Any:
        if self._tagger is None:
            self._tagger = self.tagger_factory()
        return self._tagger

    def reload_tagger(self) -> None:
        """Forget the tagger so that the next use builds it again (after training)."""
        self._tagger = None

    def session(self) -> Session:
        """Return a new database session; the caller commits and closes it."""
        return Session(self.engine, expire_on_commit=False)

    def labels_of_kind(self, kind: str) -> list[str]:
        """Return the label ids of one kind, in taxonomy order."""
        return [label_id for label_id, k in self.labels.items() if k == kind]


def open_kb(config: Config) -> KnowledgeBase:
    """Open (creating when missing) the database and index that config names."""
    from nlp.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(config.taxonomy)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database_url)
    try:
        init_db(engine)
        for attempt in range(LABEL_SYNC_ATTEMPTS):
            try:
                with Session(engine) as session:
                    sync_labels(session=session, labels=[(x.id, x.kind, x.description) for x in taxonomy.labels])
                    session.commit()
                break
            except IntegrityError:
                # Another worker starting at the same moment inserted the same labels first; read them again.
                if attempt == LABEL_SYNC_ATTEMPTS - 1:
                    raise
    except BaseException:
        engine.dispose()
        raise
    return KnowledgeBase(
        config=config,
        engine=engine,
        index=SearchIndex(config.index_dir),
        labels={label.id: label.kind for label in taxonomy.labels},
        descriptions={label.id: label.description for label in taxonomy.labels},
        tagger_factory=lambda: build_tagger(taxonomy, config.model_dir),
    )


def build_tagger(taxonomy, model_dir: Path):
    """Return the rules tagger, combined with the trained model in model_dir when there is one."""
    from nlp.model import TextModel
    from nlp.tagger import Tagger

    model = TextModel.load(model_dir) if TextModel.exists(model_dir) else None
    return Tagger(taxonomy, model)
