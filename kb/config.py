"""Settings: each declared once with its name, default and help; read from KB_* variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import KBError

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
    Setting(
        "KB_API_TOKEN",
        "",
        "A bearer token that may write through the API (besides the tokens `kb user add` prints); empty means none.",
    ),
    Setting("KB_ADMIN_USER", "admin", "Name of the web sign-in account whose password hash is KB_ADMIN_PASSWORD_HASH."),
    Setting(
        "KB_ADMIN_PASSWORD_HASH",
        "",
        "Password hash for KB_ADMIN_USER, made by `kb user hash-password`; empty means only `kb user add` accounts.",
    ),
    Setting(
        "KB_PUBLIC_READ",
        True,
        "Whether anyone may read pages and the API without signing in; false requires a sign-in or token.",
        lambda value: parse_bool(value),
    ),
)


def parse_bool(value: Any) -> bool:
    """Return the truth of a setting written as true/false, yes/no, on/off or 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, not {value!r}")


@dataclass
class Config:
    data_dir: Path
    database_url: str
    taxonomy: Path
    secret_key: str
    max_upload_bytes: int
    api_token: str = ""
    admin_user: str = "admin"
    admin_password_hash: str = ""
    public_read: bool = True
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
        try:
            values[_attr(setting)] = setting.convert(raw)
        except ValueError as error:
            raise KBError(f"setting {setting.name}: {error}") from None
    config = Config(
        data_dir=Path(values["data_dir"]).expanduser(),
        database_url=values["database_url"],
        taxonomy=Path(values["taxonomy"]).expanduser(),
        secret_key=values["secret_key"],
        max_upload_bytes=values["max_upload_bytes"],
        api_token=values["api_token"],
        admin_user=values["admin_user"],
        admin_password_hash=values["admin_password_hash"],
        public_read=values["public_read"],
        extra=overrides,
    )
    if not config.database_url:
        config.database_url = f"sqlite:///{(config.data_dir / 'kb.sqlite3').resolve()}"
    return config
