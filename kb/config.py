"""Settings: each declared once with its name, default and help; read from KB_* variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TAXONOMY = Path(__file__).resolve().parent.parent / "nlp" / "taxonomy.toml"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    convert: Any = str


SETTINGS: tuple[Setting, ...] = (
    Setting("KB_DATA_DIR", "./kb-data", "Folder holding the SQLite database and the Whoosh index."),
    Setting(
        "KB_DATABASE_URL",
        "",
        "SQLAlchemy URL of the database; empty means SQLite in KB_DATA_DIR. "
        "Use postgresql+psycopg://user:pass@host/db for PostgreSQL.",
    ),
    Setting("KB_TAXONOMY", str(DEFAULT_TAXONOMY), "Path of the taxonomy file (TOML or YAML)."),
    Setting(
        "KB_SECRET_KEY",
        "",
        "Key that signs session cookies; empty means a random key kept in KB_DATA_DIR/secret_key.",
    ),
    Setting("KB_MAX_UPLOAD_BYTES", 2_000_000, "Largest postmortem file or request body accepted, in bytes.", int),
)


@dataclass
class Config:
    data_dir: Path
    database_url: str
    taxonomy: Path
    secret_key: str
    max_upload_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "model"


def _attr(setting: Setting) -> str:
    return setting.name.removeprefix("KB_").lower()


def load_config(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Build the configuration: defaults, then KB_* environment variables, then overrides."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = overrides.pop(setting.name, environ.get(setting.name, setting.default))
        values[_attr(setting)] = setting.convert(raw)
    config = Config(
        data_dir=Path(values["data_dir"]).expanduser(),
        database_url=values["database_url"],
        taxonomy=Path(values["taxonomy"]).expanduser(),
        secret_key=values["secret_key"],
        max_upload_bytes=values["max_upload_bytes"],
        extra=overrides,
    )
    if not config.database_url:
        config.database_url = f"sqlite:///{(config.data_dir / 'kb.sqlite3').resolve()}"
    return config
