"""kb.doctor and `kb doctor`: find where the index differs from the database, and repair it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlmodel import select

from app import cli
from kb.doctor import check_kb, diagnose
from kb.ingest import import_paths
from kb.models import Postmortem

SLUGS = ["alpha", "bravo", "charlie", "delta", "echo"]
CLEAN = {"postmortems": 5, "documents": 5, "missing": [], "extra": [], "marked": [], "stale": [], "ok": True}
BROKEN = {"postmortems": 5, "documents": 4, "missing": ["alpha", "bravo"], "extra": ["stray"],
          "marked": ["charlie"], "stale": ["delta"], "ok": False}
BROKEN_TABLE = """\
postmortems in the database  5
documents in the index       4
missing from the index       2      alpha, bravo
not in the database          1      stray
marked for reindexing        1      charlie
stale in the index           1      delta
5 problems; `kb doctor --fix` repairs them
"""


@pytest.fixture
def imported(kb, write_md):
    paths = [write_md(f"{slug}.md", f"# Incident {slug}\n\nThe {slug} feature pipeline drifted.\n") for slug in SLUGS]
    import_paths(kb, paths)


@pytest.fixture
def broken(kb, imported):
    """Drop two documents, add a stray one, leave a row marked and change a row behind the index's back."""
    kb.index.delete(["alpha", "bravo"])
    kb.index.upsert([{"slug": "stray", "title": "Not in the database"}])
    with kb.session() as session:
        rows = {row.slug: row for row in session.exec(select(Postmortem))}
        rows["charlie"].needs_reindex = True
        rows["delta"].title = "Renamed without reindexing"
        session.add_all([rows["charlie"], rows["delta"]])
        session.commit()


@pytest.fixture
def runner(tmp_path, database_url):
    """A CLI runner on the same data folder and database as the kb fixture."""
    return CliRunner(env={"KB_DATA_DIR": str(tmp_path / "data"), "KB_DATABASE_URL": database_url})


def test_a_consistent_knowledge_base_is_ok(kb, imported):
    assert diagnose(kb=kb).as_dict() == CLEAN


def test_an_empty_knowledge_base_is_ok(kb):
    assert diagnose(kb=kb).as_dict() == CLEAN | {"postmortems": 0, "documents": 0}


def test_every_kind_of_difference_is_found(kb, broken):
    assert check_kb(kb=kb).as_dict() == {"found": BROKEN, "reindexed": [], "deleted": [], "after": None}


def test_fix_repairs_the_index_and_checks_again(kb, broken):
    assert check_kb(kb=kb, fix=True).as_dict() == {
        "found": BROKEN, "reindexed": ["alpha", "bravo", "charlie", "delta"], "deleted": ["stray"], "after": CLEAN}
    assert diagnose(kb=kb).as_dict() == CLEAN
    with kb.index.searcher() as searcher:
        assert searcher.document(slug="delta")["title"] == "Renamed without reindexing"


def test_a_failed_repair_is_reported_as_remaining(kb, broken, monkeypatch):
    def fail(documents):
        raise OSError("disk full")

    monkeypatch.setattr(kb.index, "upsert", fail)
    checkup = check_kb(kb=kb, fix=True)
    assert (checkup.remaining.as_dict(), checkup.remaining is checkup.after) == (
        BROKEN | {"documents": 3, "extra": []}, True)


def test_cli_table_exits_1_while_problems_remain(runner, broken):
    result = runner.invoke(cli, ["doctor"])
    assert (result.exit_code, result.stdout) == (1, BROKEN_TABLE)


def test_cli_fix_json_exits_0_once_repaired(runner, broken):
    result = runner.invoke(cli, ["doctor", "--fix", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["after"] == CLEAN
    assert runner.invoke(cli, ["doctor"]).stdout.splitlines()[-1] == "ok: the index matches the database"


def test_cli_lists_at_most_ten_slugs_per_line(runner, kb, imported):
    kb.index.upsert([{"slug": f"stray-{i:02d}", "title": "Stray"} for i in range(12)])
    line = runner.invoke(cli, ["doctor"]).stdout.splitlines()[3]
    assert line == ("not in the database          12     "
                    + ", ".join(f"stray-{i:02d}" for i in range(10)) + " and 2 more")
