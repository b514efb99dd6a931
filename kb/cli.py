"""The `kb` command line: each command parses its options, calls the domain, and prints."""

from __future__ import annotations

import csv
import json
import sys

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import func, select

from kb.config import SETTINGS, load_config
from kb.context import KnowledgeBase, open_kb
from kb.doctor import check_kb, format_checkup
from kb.errors import KBError, ParseError
from kb.evaluate import (
    DEFAULT_EVAL_DIR,
    cross_validate,
    evaluate_on_test,
    format_report,
    load_examples,
    model_predictor,
    report_as_dict,
    rules_predictor,
)
from kb.export import FORMATS, export_all
from kb.ingest import import_files, tagger_input
from kb.models import Postmortem
from kb.parse import parse_file
from kb.reindex import rebuild_index
from kb.schema import upgrade_db
from kb.search import SORTS, search
from kb.sources import JSONL_BACKUP, discover_files, expand_sources
from kb.storage import label_counts, make_engine
from kb.training import retag_all, train_tagger
from kb.trends import PERIODS, compute_trends
from kb.trends_summary import summaries, trends_document
from kb.users import MIN_PASSWORD_LENGTH, create_user, hash_password
from nlp.taxonomy import TaxonomyError, check_taxonomy_data, load_taxonomy, read_taxonomy_data


def settings_help() -> str:
    lines = ["\b", "Settings (environment variables):"]
    lines += [f"  {s.name} (default {s.default!r})\n      {s.help}" for s in SETTINGS]
    return "\n".join(lines)


class KBContext:
    """Opens the knowledge base on first use, so `kb --help` stays fast."""

    def __init__(self) -> None:
        self._kb: KnowledgeBase | None = None

    @property
    def kb(self) -> KnowledgeBase:
        if self._kb is None:
            try:
                self._kb = open_kb(load_config())
            except (TaxonomyError, KBError, OSError, SQLAlchemyError) as error:
                raise click.ClickException(str(error).split("\n")[0]) from None
        return self._kb

    def close(self) -> None:
        """Close the database connections, if the knowledge base was opened."""
        if self._kb is not None:
            self._kb.engine.dispose()


pass_kb = click.make_pass_decorator(KBContext, ensure=True)


@click.group(epilog=settings_help())
@click.version_option(package_name="postmortem-kb")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Postmortem KB: import, tag, search and trend ML incident postmortems."""
    ctx.obj = KBContext()
    ctx.call_on_close(ctx.obj.close)


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Show what would happen without storing anything.")
@click.option("--strict", is_flag=True, help="Fail files with warnings (bad front matter values, unknown labels).")
@pass_kb
def import_command(ctx: KBContext, paths: tuple[str, ...], dry_run: bool, strict: bool) -> None:
    """Import markdown postmortems from files and folders (recursively, *.md), or a `kb export` backup."""
    kb = ctx.kb
    files, problems = discover_files(paths)
    files, unreadable = expand_sources(files)
    problems += unreadable
    with click.progressbar(length=len(files), label="Importing", file=sys.stderr,
                           show_pos=True, item_show_func=lambda r: r.path if r else None) as bar:
        report = import_files(kb, files, problems=problems, dry_run=dry_run, strict=strict,
                              on_progress=lambda result: bar.update(1, result))
    if dry_run:
        click.echo("Dry run: nothing was stored.")
    counts = report.counts()
    click.echo("  ".join(f"{name}: {count}" for name, count in counts.items()))
    warned = [r for r in report.results if r.warnings and r.outcome != "failed"]
    for result in warned:
        for warning in result.warnings:
            click.echo(f"warning  {result.path}: {warning}", err=True)
    if report.failed:
        click.echo("\nFailed files:", err=True)
        for result in report.failed:
            click.echo(f"  {result.path}: {result.reason}", err=True)
        sys.exit(1)


@cli.command("tag")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_kb
def tag_command(ctx: KBContext, files: tuple[str, ...], fmt: str) -> None:
    """Tag files with the machine's labels, without storing them (front-matter labels are ignored)."""
    kb = ctx.kb
    output, failed = [], False
    for path in files:
        try:
            parsed = parse_file(path, max_bytes=kb.config.max_upload_bytes)
        except ParseError as error:
            click.echo(f"error  {error}", err=True)
            failed = True
            continue
        suggestions = kb.tagger.tag(tagger_input(parsed))
        entry = {"file": path, "title": parsed.title, "facets": [], "categories": []}
        for s in suggestions:
            key = "facets" if s.kind == "facet" else "categories"
            entry[key].append({"label": s.label, "score": s.score, "evidence": s.evidence})
        output.append(entry)
    if fmt == "json":
        click.echo(json.dumps(output, indent=2, ensure_ascii=False))
    else:
        for entry in output:
            click.echo(f"{entry['file']}  ({entry['title']})")
            for key in ("facets", "categories"):
                for tag in entry[key]:
                    first = tag["evidence"][0] if tag["evidence"] else ""
                    click.echo(f"  {tag['label']:<24} {tag['score']:.2f}  {first}")
    if failed:
        sys.exit(1)


@cli.command("search")
@click.argument("query", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--facet", "facets", multiple=True, help="Only this facet (repeat for any of several).")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--severity", "severities", multiple=True, help="Only this severity, e.g. SEV1 (repeatable).")
@click.option("--service", "services", multiple=True, help="Only this service (repeatable).")
@click.option("--after", metavar="YYYY-MM-DD", help="Incidents on or after this date.")
@click.option("--before", metavar="YYYY-MM-DD", help="Incidents on or before this date.")
@pass_kb
def search_command(ctx: KBContext, query: tuple[str, ...], fmt: str, limit: int, sort: str, page: int,
                   **filters) -> None:
    """Search postmortems: words, "phrases", facet:, category:, severity:, service:, before:, after:."""
    try:
        results = search(ctx.kb, " ".join(query), per_page=limit, sort=sort, page=page, **filters)
    except KBError as error:
        raise click.ClickException(str(error)) from None
    if fmt == "json":
        data = results.as_dict()
        click.echo(json.dumps({"total": data["total"], "hits": data["hits"]}, indent=2, ensure_ascii=False))
        return
    click.echo(f"{results.total} postmortems match")
    if results.suggestion:
        click.echo(f"did you mean: {results.suggestion}")
    for hit in results.hits:
        tags = ", ".join(hit.facets + hit.categories)
        click.echo(f"{hit.date or '----------'}  {hit.slug:<48} {hit.title}")
        if tags:
            click.echo(f"            tags: {tags}")


@cli.command("reindex")
@pass_kb
def reindex_command(ctx: KBContext) -> None:
    """Rebuild the search index from the database."""
    count = rebuild_index(ctx.kb)
    click.echo(f"indexed {count} postmortems")


@cli.command("doctor")
@click.option("--fix", is_flag=True, help="Reindex missing, marked and stale postmortems; delete stray documents.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_kb
def doctor_command(ctx: KBContext, fix: bool, fmt: str) -> None:
    """Compare the search index with the database; exit status 1 while they differ."""
    checkup = check_kb(kb=ctx.kb, fix=fix)
    click.echo(json.dumps(checkup.as_dict(), indent=2) if fmt == "json" else format_checkup(checkup))
    if not checkup.remaining.ok:
        sys.exit(1)


@cli.command("stats")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_kb
def stats_command(ctx: KBContext, fmt: str) -> None:
    """Show how many postmortems there are and how many cite each label."""
    with ctx.kb.session() as session:
        total = session.exec(select(func.count(Postmortem.id))).one()
        counts = label_counts(session=session)
    if fmt == "json":
        click.echo(json.dumps({"postmortems": total, "labels": [
            {"label": label, "kind": kind, "count": count} for label, kind, count in counts
        ]}, indent=2))
        return
    click.echo(f"postmortems: {total}")
    for label, kind, count in counts:
        click.echo(f"  {kind:<9} {label:<24} {count}")


@cli.command("trends")
@click.option("--period", type=click.Choice(PERIODS), default="quarter", show_default=True)
@click.option("--from", "start", metavar="YYYY-MM-DD", help="First incident date to count.")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="Last incident date to count.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--confirmed-only", is_flag=True, help="Count only human-confirmed tags.")
@pass_kb
def trends_command(ctx: KBContext, period: str, start: str | None, end: str | None, fmt: str,
                   confirmed_only: bool) -> None:
    """Print postmortems per period and per label, what rose and fell, and a summary per period."""
    with ctx.kb.session() as session:
        try:
            trends = compute_trends(session=session, period=period, confirmed_only=confirmed_only,
                                    start=start, end=end)
        except KBError as error:
            raise click.ClickException(str(error)) from None
    if fmt == "json":
        click.echo(json.dumps(trends_document(trends), indent=2))
        return
    if fmt == "csv":
        csv.writer(sys.stdout, lineterminator="\n").writerows(trends.as_rows())
        return
    if not trends.periods:
        click.echo("no dated postmortems")
        return
    rows = [["label", "kind", *trends.periods], ["(postmortems)", "", *trends.totals.values()]]
    for kind, labels in trends.labels.items():
        rows += [[label, kind, *counts.values()] for label, counts in labels.items()]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(cell).rjust(w) if i > 1 else str(cell).ljust(w)
                             for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    click.echo("")
    for text in list(summaries(trends).values())[:4]:
        click.echo(text)


@cli.command("train")
@pass_kb
def train_command(ctx: KBContext) -> None:
    """Train the tagger's model on every human-confirmed label and save it in the data folder."""
    try:
        summary = train_tagger(ctx.kb)
    except KBError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"trained on {summary.documents} postmortems; saved to {ctx.kb.config.model_dir}")
    for line in summary.quality_lines():
        click.echo(line)
    click.echo("run `kb retag` to apply it to the stored postmortems")


@cli.command("retag")
@pass_kb
def retag_command(ctx: KBContext) -> None:
    """Tag every stored postmortem again with the current taxonomy and model; human decisions stay."""
    changes = retag_all(ctx.kb)
    labels = sorted(set(changes["added"]) | set(changes["removed"]))
    if not labels:
        click.echo("no tags changed")
    for label in labels:
        click.echo(f"  {label:<24} +{changes['added'].get(label, 0):<4} -{changes['removed'].get(label, 0)}")


@cli.command("eval")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--folds", "k", type=click.IntRange(2, 20), default=5, show_default=True)
@click.option("--rules-only", is_flag=True, help="Evaluate the rules without training a model.")
@click.option("--test", "test_path", type=click.Path(exists=True),
              help="Train on PATHS and score the labelled postmortems under this path, without cross-validation.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def eval_command(paths: tuple[str, ...], k: int, rules_only: bool, test_path: str | None, fmt: str) -> None:
    """Cross-validate the tagger on labelled postmortems (default: seed_data) against a naive baseline."""
    taxonomy = _taxonomy()
    examples = load_examples(paths or [DEFAULT_EVAL_DIR], taxonomy)
    predictor = rules_predictor(taxonomy) if rules_only else model_predictor(taxonomy)
    description = "rules" if rules_only else "rules+model"
    if test_path:
        test = load_examples([test_path], taxonomy)
        if not test:
            raise click.ClickException(f"no labelled postmortems found under {test_path}")
        report = evaluate_on_test(examples, test, taxonomy, predictor)
        heading = (f"{description}: trained on {len(examples)} labelled postmortems, "
                   f"tested on {len(test)} in {test_path}")
    else:
        if len(examples) < k:
            raise click.ClickException(f"{len(examples)} labelled postmortems found; {k}-fold needs at least {k}")
        report = cross_validate(examples, taxonomy, predictor, k)
        heading = f"{description}: {k}-fold cross-validation on {len(examples)} labelled postmortems"
    if fmt == "json":
        click.echo(json.dumps(report_as_dict(report), indent=2))
    else:
        click.echo(format_report(report, heading))


@cli.group("taxonomy")
def taxonomy_group() -> None:
    """Inspect the taxonomy file."""


@taxonomy_group.command("check")
@click.argument("path", required=False, type=click.Path())
def taxonomy_check(path: str | None) -> None:
    """Check the taxonomy file (default: KB_TAXONOMY) for duplicate ids, shared cues and empty labels."""
    path = path or str(load_config().taxonomy)
    try:
        problems = check_taxonomy_data(read_taxonomy_data(path))
    except TaxonomyError as error:
        problems = error.problems
    if problems:
        for problem in problems:
            click.echo(f"{path}: {problem}", err=True)
        sys.exit(1)
    taxonomy = load_taxonomy(path)
    click.echo(f"{path}: ok, {len(taxonomy.of_kind('facet'))} facets and "
               f"{len(taxonomy.of_kind('category'))} categories")


def _taxonomy():
    path = load_config().taxonomy
    try:
        return load_taxonomy(path)
    except TaxonomyError as error:
        raise click.ClickException(str(error)) from None


@cli.group("user")
def user_group() -> None:
    """Manage the people who may write."""


@user_group.command("add")
@click.argument("name")
@click.password_option(help="The user's password (asked for when not given).")
@pass_kb
def user_add(ctx: KBContext, name: str, password: str) -> None:
    """Create a user and print their API token."""
    with ctx.kb.session() as session:
        try:
            _user, token = create_user(session=session, name=name, password=password)
        except KBError as error:
            raise click.ClickException(str(error)) from None
        session.commit()
    click.echo(f"created user {name!r}")
    click.echo(f"API token (shown once; send it as 'Authorization: Bearer <token>'): {token}")


@user_group.command("hash-password")
@click.password_option(help="The password to hash (asked for when not given).")
def user_hash_password(password: str) -> None:
    """Print a password hash to put in KB_ADMIN_PASSWORD_HASH."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    click.echo(hash_password(password))


@cli.command("export")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown", show_default=True)
@pass_kb
def export_command(ctx: KBContext, folder: str, fmt: str) -> None:
    """Write every postmortem with its human tag decisions to FOLDER; `kb import FOLDER` reads it back."""
    try:
        count = export_all(ctx.kb, folder, format=fmt)
    except (KBError, OSError) as error:
        raise click.ClickException(str(error)) from None
    where = f"{folder}/{JSONL_BACKUP}" if fmt == "jsonl" else folder
    click.echo(f"exported {count} postmortems to {where}")


@cli.group("db")
def db_group() -> None:
    """Look after the database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending schema migration (Alembic); safe to run again."""
    config = load_config()
    engine = make_engine(config.database_url)
    try:
        before, after = upgrade_db(engine)
    except SQLAlchemyError as error:
        raise click.ClickException(f"could not upgrade the database: {error}") from None
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"database schema is up to date (revision {after})")
    else:
        click.echo(f"database schema upgraded from {before or 'none'} to {after}")
