"""The `kb` command line on a temporary data folder: what each command prints and how it exits."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from app import cli, create_app
from kb.config import SETTINGS

DRIFT = """---
title: Ranking drifted after the spring sale
date: 2024-03-02
severity: SEV2
facets: [rewards]
categories: [fairness-bias]
---
## Root cause

Nobody owned the feature pipeline after the reorg.
The input distribution drifted when buyers changed their habits.
"""
TYPO = "# Fraud threshold typo\n\nDate: 2023-06-01\n\n## Why\n\nA misconfigured threshold declined every order.\n"


@pytest.fixture
def runner(tmp_path):
    return CliRunner(env={"KB_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def docs(write_md):
    return [write_md("2024-03-02-drift.md", DRIFT), write_md("threshold-typo.md", TYPO)]


@pytest.fixture
def imported(runner, docs):
    result = runner.invoke(cli, ["import", str(docs[0].parent)])
    assert result.exit_code == 0, result.output
    return docs


def test_import_prints_the_counts(runner, docs):
    result = runner.invoke(cli, ["import", str(docs[0].parent)])
    assert (result.exit_code, result.stdout) == (0, "imported: 2  updated: 0  unchanged: 0  failed: 0\n")
    again = runner.invoke(cli, ["import", *map(str, docs)])
    assert (again.exit_code, again.stdout) == (0, "imported: 0  updated: 0  unchanged: 2  failed: 0\n")


def test_import_names_each_failing_file_and_its_reason_then_exits_1(runner, docs, write_md):
    bad = write_md("bad.md", "---\ntitle: ok\ndate: [\n---\nText.\n")
    result = runner.invoke(cli, ["import", str(docs[0].parent), str(docs[0].parent / "missing.md")])
    assert result.exit_code == 1
    assert result.stdout == "imported: 2  updated: 0  unchanged: 0  failed: 2\n"
    assert result.stderr.endswith(
        "\nFailed files:\n"
        f"  {docs[0].parent / 'missing.md'}: no such file or folder\n"
        f"  {bad}: line 3: front matter is not valid YAML: expected the node content, but found '<stream end>'\n")


def test_import_prints_warnings(runner, write_md):
    path = write_md("x.md", "---\nseverity: urgent\nfacets: [vibes]\n---\n# X\n\nText.\n")
    result = runner.invoke(cli, ["import", str(path)])
    assert result.exit_code == 0
    assert result.stderr.endswith(
        f"warning  {path}: front matter 'severity' 'urgent' is not SEV1-SEV4; ignored\n"
        f"warning  {path}: front matter facets: unknown facet 'vibes'; ignored\n")


def test_dry_run_stores_nothing(runner, docs):
    result = runner.invoke(cli, ["import", "--dry-run", str(docs[0].parent)])
    assert (result.exit_code, result.stdout) == (
        0, "Dry run: nothing was stored.\nimported: 2  updated: 0  unchanged: 0  failed: 0\n")
    assert json.loads(runner.invoke(cli, ["stats", "--format", "json"]).stdout)["postmortems"] == 0
    assert json.loads(runner.invoke(cli, ["search", "--format", "json"]).stdout) == {"total": 0, "hits": []}


def test_tag_json_lists_the_machines_labels_with_evidence_and_ignores_front_matter(runner, docs, write_md):
    result = runner.invoke(cli, ["tag", str(docs[0]), "--format", "json"])
    assert result.exit_code == 0
    [entry] = json.loads(result.stdout)
    assert (set(entry), entry["file"], entry["title"]) == (
        {"file", "title", "facets", "categories"}, str(docs[0]), "Ranking drifted after the spring sale")
    tags = entry["facets"] + entry["categories"]
    assert all(set(tag) == {"label", "score", "evidence"} and 0 < tag["score"] <= 1 and tag["evidence"] for tag in tags)
    assert "data-drift" in [tag["label"] for tag in entry["categories"]]
    # rewards and fairness-bias come only from the front matter, which `kb tag` does not read as labels.
    assert not {"rewards", "fairness-bias"} & {tag["label"] for tag in tags}
    without_front_matter = write_md("plain.md", "# Ranking drifted after the spring sale\n" + DRIFT.split("---\n", 2)[2])
    [plain] = json.loads(runner.invoke(cli, ["tag", str(without_front_matter), "--format", "json"]).stdout)
    assert (plain["facets"], plain["categories"]) == (entry["facets"], entry["categories"])


def test_tag_table_and_a_bad_file(runner, docs, write_md):
    result = runner.invoke(cli, ["tag", str(docs[1])])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"{docs[1]}  (Fraud threshold typo)"
    assert "configuration" in result.stdout and "A misconfigured threshold declined every order." in result.stdout
    bad = write_md("empty.md", "")
    failed = runner.invoke(cli, ["tag", str(bad), str(docs[1]), "--format", "json"])
    assert (failed.exit_code, failed.stderr) == (1, f"error  {bad}: file is empty\n")
    assert [entry["title"] for entry in json.loads(failed.stdout)] == ["Fraud threshold typo"]


def test_search_json_and_table(runner, imported):
    result = runner.invoke(cli, ["search", "misconfigured", "threshold", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (set(data), data["total"]) == ({"total", "hits"}, 1)
    [hit] = data["hits"]
    assert set(hit) == {"slug", "title", "date", "score", "severity", "facets", "categories", "highlight"}
    assert (hit["slug"], hit["title"], hit["date"], hit["severity"]) == (
        "threshold-typo", "Fraud threshold typo", "2023-06-01", "")
    table = runner.invoke(cli, ["search", "facet:rewards"])
    assert table.stdout.splitlines()[:2] == [
        "1 postmortems match",
        "2024-03-02  2024-03-02-drift                                 Ranking drifted after the spring sale"]
    newest = json.loads(runner.invoke(cli, ["search", "--sort", "newest", "--format", "json"]).stdout)
    assert [hit["slug"] for hit in newest["hits"]] == ["2024-03-02-drift", "threshold-typo"]


def test_search_with_a_bad_query_is_a_one_line_error(runner, imported):
    result = runner.invoke(cli, ["search", '"open'])
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", 'Error: the query has an unmatched double quote (")\n')


def test_reindex(runner, imported):
    result = runner.invoke(cli, ["reindex"])
    assert (result.exit_code, result.stdout) == (0, "indexed 2 postmortems\n")
    assert json.loads(runner.invoke(cli, ["search", "drifted", "--format", "json"]).stdout)["total"] == 1


def test_stats(runner, imported):
    data = json.loads(runner.invoke(cli, ["stats", "--format", "json"]).stdout)
    assert data["postmortems"] == 2
    counts = {row["label"]: (row["kind"], row["count"]) for row in data["labels"]}
    assert (counts["rewards"], counts["fairness-bias"], counts["strategy"]) == (
        ("facet", 1), ("category", 1), ("facet", 0))
    assert runner.invoke(cli, ["stats"]).stdout.splitlines()[0] == "postmortems: 2"


def test_trends_json_and_csv(runner, imported):
    data = json.loads(runner.invoke(cli, ["trends", "--period", "year", "--format", "json"]).stdout)
    assert (data["period"], data["periods"], data["totals"]) == ("year", ["2023", "2024"], {"2023": 1, "2024": 1})
    assert data["labels"]["facet"]["rewards"] == {"2023": 0, "2024": 1}
    assert data["summaries"]["2024"].startswith("2024: 1 postmortem")
    rows = list(csv.reader(io.StringIO(runner.invoke(cli, ["trends", "--period", "year", "--format", "csv"]).stdout)))
    assert rows[:3] == [["figure", "kind", "label", "period", "value"],
                        ["postmortems", "", "", "2023", "1"], ["postmortems", "", "", "2024", "1"]]
    assert ["postmortems citing label", "facet", "rewards", "2024", "1"] in rows
    bad = runner.invoke(cli, ["trends", "--to", "soon"])
    assert (bad.exit_code, bad.stderr) == (1, "Error: to needs a date written YYYY-MM-DD, not 'soon'\n")


def test_user_add_prints_a_token_that_the_api_accepts(runner, tmp_path):
    result = runner.invoke(cli, ["user", "add", "ana", "--password", "correct horse"])
    assert result.exit_code == 0
    created, token_line = result.stdout.splitlines()
    prefix = "API token (shown once; send it as 'Authorization: Bearer <token>'): "
    assert (created, token_line.startswith(prefix)) == ("created user 'ana'", True)
    app = create_app({"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "x"})
    response = app.test_client().post("/api/postmortems", json={"markdown": TYPO},
                                      headers={"Authorization": f"Bearer {token_line.removeprefix(prefix)}"})
    app.extensions["kb"].engine.dispose()
    assert response.status_code == 201


def test_user_add_refuses_a_short_password_and_a_taken_name(runner):
    short = runner.invoke(cli, ["user", "add", "ana", "--password", "short"])
    assert (short.exit_code, short.stderr) == (1, "Error: a password needs at least 8 characters\n")
    assert runner.invoke(cli, ["user", "add", "ana", "--password", "correct horse"]).exit_code == 0
    again = runner.invoke(cli, ["user", "add", "ana", "--password", "other horse"])
    assert (again.exit_code, again.stderr) == (1, "Error: user 'ana' already exists\n")


def test_help_lists_every_command_and_setting():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert [name for name in cli.commands if f"  {name} " not in result.stdout] == []
    assert [s.name for s in SETTINGS if s.name not in result.stdout] == []
