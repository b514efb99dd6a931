"""Postmortem KB web application factory and the `kb` command-line entry point."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlmodel import select

from kb.cli import cli
from kb.config import Config, load_config
from kb.context import open_kb
from kb.errors import KBError
from kb.ingest import import_paths
from kb.models import Postmortem
from kb.reindex import heal_index
from kb.training import retag_all, train_tagger
from nlp.model import TextModel
from web import register

ROOT = Path(__file__).resolve().parent
REQUEST_OVERHEAD_BYTES = 64 * 1024  # room for form fields and JSON around the markdown itself
TRENDS_WARM_INTERVAL_S = 15.0


def secret_key(config: Config) -> str:
    """Return the configured secret key, or one generated once and kept in the data folder."""
    if config.secret_key:
        return config.secret_key
    path = config.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Create the web application; overrides replace KB_* settings (tests use this)."""
    config = load_config(overrides)
    kb = open_kb(config)
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(
        SECRET_KEY=secret_key(config),
        MAX_CONTENT_LENGTH=config.max_upload_bytes + REQUEST_OVERHEAD_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.extensions["kb"] = kb
    register(app)
    healed = heal_index(kb)
    if healed:
        app.logger.info("reindexed %d postmortems left marked by an earlier failure", healed)
    return app


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--seed", "seed_dir", type=click.Path(file_okay=False),
              help="Import this folder first when the knowledge base is empty.")
@click.option("--threads", default=8, show_default=True, type=int)
def serve_command(host: str, port: int, seed_dir: str | None, threads: int) -> None:
    """Serve the web UI and JSON API with waitress (never in debug mode)."""
    import waitress

    app = create_app()
    kb = app.extensions["kb"]
    if seed_dir:
        with kb.session() as session:
            empty = session.exec(select(Postmortem.id).limit(1)).first() is None
        if empty:
            click.echo(f"Empty knowledge base: importing {seed_dir} ...")
            report = import_paths(kb, [seed_dir])
            click.echo("  ".join(f"{k}: {v}" for k, v in report.counts().items()))
        if not TextModel.exists(kb.config.model_dir):
            try:
                summary = train_tagger(kb)
            except KBError as error:
                click.echo(f"Tagger not trained ({error}); tagging with rules only.")
            else:
                click.echo(f"Trained the tagger on {summary.documents} labelled postmortems; retagging ...")
                for line in summary.quality_lines():
                    click.echo(f"  {line}")
                retag_all(kb)
    logging.basicConfig(level=logging.INFO)
    threading.Thread(target=warm_trends_forever, args=(kb,), daemon=True, name="trends-warmer").start()
    click.echo(f"Postmortem KB on http://{host}:{port}/  (Ctrl+C stops)")
    waitress.serve(app, host=host, port=port, threads=threads)


def warm_trends_forever(kb, interval_s: float = TRENDS_WARM_INTERVAL_S) -> None:
    """Keep the trend figures computed while serving; imports from other processes are picked up too."""
    while True:
        try:
            with kb.session() as session:
                kb.trends_cache.warm(session=session)
        except Exception:  # a failed warm-up only means the next visitor computes the figures
            logging.getLogger(__name__).exception("warming the trends cache failed")
        time.sleep(interval_s)


def main() -> None:
    """Run the `kb` command line."""
    cli()


if __name__ == "__main__":
    main()
