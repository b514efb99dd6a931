"""Trend figures come from SQL and match what a person would count by hand."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest
from click.testing import CliRunner

from app import cli
from kb.ingest import import_paths
from kb.trends import compute_trends, period_bounds
from kb.trends_summary import format_hours, label_changes, period_summary

DOCS = {
    # name: (date, severity, services, facets, categories, started, detected, resolved)
    "2024-01-10-a.md": ("2024-01-10", "SEV1", ["recs-api"], ["processes"], ["data-drift"], "2024-01-10T00:00", "2024-01-10T02:00", "2024-01-11T02:00"),
    "2024-02-11-b.md": ("2024-02-11", "SEV2", ["recs-api", "feature-store"], ["processes", "people"], ["data-drift"], "2024-02-11T00:00", "2024-02-11T06:00", "2024-02-11T07:00"),
    "2024-05-12-c.md": ("2024-05-12", "SEV2", ["fraud-scorer"], ["structure"], ["stale-model"], "2024-05-12T00:00", "2024-05-22T00:00", "2024-05-23T00:00"),
    "2024-05-13-d.md": ("2024-05-13", "", [], ["processes"], ["data-drift", "monitoring-gap"], None, None, None),
    "2024-06-14-e.md": ("2024-06-14", "SEV3", ["recs-api"], ["processes"], ["data-drift"], "2024-06-14T00:00", "2024-06-14T01:00", None),
}


def write(folder, name, date, severity, services, facets, categories, started, detected, resolved):
    times = "".join(f"{key}: {value}\n" for key, value in
                    (("started", started), ("detected", detected), ("resolved", resolved)) if value)
    (folder / name).write_text(
        f"---\ntitle: Incident {name}\ndate: {date}\nseverity: {severity or ''}\nservices: {json.dumps(services)}\n"
        f"facets: {json.dumps(facets)}\ncategories: {json.dumps(categories)}\n{times}---\n"
        "## Summary\nSomething went wrong with a model.\n", encoding="utf-8")


@pytest.fixture
def loaded(kb, tmp_path):
    folder = tmp_path / "trend-docs"
    folder.mkdir()
    for name, fields in DOCS.items():
        write(folder, name, *fields)
    assert import_paths(kb, [folder]).counts()["imported"] == len(DOCS)
    return kb


def human_only(trends, kind, label):
    return trends.labels[kind][label]


def test_counts_per_quarter_from_confirmed_labels(loaded):
    with loaded.session() as session:
        trends = compute_trends(session=session, period="quarter", confirmed_only=True)
    assert trends.periods == ["2024-Q1", "2024-Q2"]
    assert trends.totals == {"2024-Q1": 2, "2024-Q2": 3}
    assert trends.labels["facet"]["processes"] == {"2024-Q1": 2, "2024-Q2": 2}
    assert trends.labels["category"]["data-drift"] == {"2024-Q1": 2, "2024-Q2": 2}
    assert trends.severity == {"SEV1": {"2024-Q1": 1, "2024-Q2": 0}, "SEV2": {"2024-Q1": 1, "2024-Q2": 1},
                               "SEV3": {"2024-Q1": 0, "2024-Q2": 1}, "unset": {"2024-Q1": 0, "2024-Q2": 1}}
    assert trends.services == [("recs-api", 3), ("feature-store", 1), ("fraud-scorer", 1)]
    assert trends.cooccurrence["processes"]["data-drift"] == 4
    assert trends.cooccurrence["structure"] == {"stale-model": 1}
    assert trends.share(2, "2024-Q2") == pytest.approx(2 / 3)


def test_months_years_and_date_range(loaded):
    with loaded.session() as session:
        months = compute_trends(session=session, period="month", confirmed_only=True)
        years = compute_trends(session=session, period="year", confirmed_only=True)
        ranged = compute_trends(session=session, period="month", confirmed_only=True,
                                start="2024-02-01", end="2024-05-31")
    assert months.periods == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    assert months.totals == {"2024-01": 1, "2024-02": 1, "2024-03": 0, "2024-04": 0, "2024-05": 2, "2024-06": 1}
    assert years.totals == {"2024": 5}
    assert ranged.totals == {"2024-02": 1, "2024-03": 0, "2024-04": 0, "2024-05": 2}


def test_medians_and_buckets_of_times(loaded):
    with loaded.session() as session:
        trends = compute_trends(session=session, period="quarter", confirmed_only=True)
    detect = trends.durations["detect"]["data-drift"]
    # data-drift postmortems with times: a (2 h), b (6 h), e (1 h); d has none.
    assert (detect.median_hours, detect.count) == (statistics.median([2, 6, 1]), 3)
    assert detect.buckets == {"< 1 h": 0, "1–6 h": 2, "6–24 h": 1, "1–3 d": 0, "3–7 d": 0, "> 7 d": 0}
    resolve = trends.durations["resolve"]["processes"]
    assert (resolve.median_hours, resolve.count) == (statistics.median([24, 1]), 2)
    assert trends.period_durations["detect"]["2024-Q2"].median_hours == statistics.median([240, 1])


def test_summary_and_changes(loaded):
    with loaded.session() as session:
        trends = compute_trends(session=session, period="quarter", confirmed_only=True)
    assert period_summary(trends, "2024-Q1") == "2024-Q1: 2 postmortems."
    assert period_summary(trends, "2024-Q2") == (
        "2024-Q2: 3 postmortems (+1 vs 2024-Q1). Median time to detect grew from 4 h to 5 d.")
    changes = {c.label: (c.last, c.trailing) for c in label_changes(trends)}
    assert changes["structure"] == (1, 0.0) and changes["people"] == (0, 1.0)
    assert [format_hours(h) for h in (0.5, 1, 4.25, 30, 100)] == ["30 min", "1 h", "4.2 h", "30 h", "4 d"]


def test_rejected_tags_do_not_count_and_bad_input_is_refused(loaded):
    from kb.errors import InvalidQuery

    with loaded.session() as session:
        with pytest.raises(InvalidQuery, match="period must be one of month, quarter, year"):
            compute_trends(session=session, period="week")
        with pytest.raises(InvalidQuery, match="from needs a date written YYYY-MM-DD, not 'soon'"):
            compute_trends(session=session, start="soon")
    assert period_bounds("quarter", "2024-Q1") == ("2024-01-01", "2024-03-31")
    assert period_bounds("month", "2024-02") == ("2024-02-01", "2024-02-29")


def test_drill_down_links_find_exactly_the_counted_postmortems(loaded, client):
    trends = client.get("/api/trends?period=quarter").get_json()
    q2 = trends["labels"]["facet"]["processes"]["2024-Q2"]
    found = client.get("/api/search?facet=processes&after=2024-04-01&before=2024-06-30").get_json()["total"]
    assert found == q2
    page = client.get("/trends").get_data(as_text=True)
    assert "/search?facet=processes&amp;after=2024-04-01&amp;before=2024-06-30" in page
    assert 'data-chart="facet"' in page and "vendor/chartjs/chart.umd.min.js" in page


def test_exports_agree(loaded, client):
    rows = list(csv.reader(io.StringIO(client.get("/trends.csv?period=year").get_data(as_text=True))))
    assert rows[0] == ["figure", "kind", "label", "period", "value"]
    assert ["postmortems", "", "", "2024", "5"] in rows
    data = client.get("/api/trends?period=year").get_json()
    assert data["totals"] == {"2024": 5} and data["summaries"] == {"2024": "2024: 5 postmortems."}
    report = client.get("/trends/report?period=quarter&name=2024-Q2")
    assert report.status_code == 200 and "Incident review: 2024-Q2" in report.get_data(as_text=True)


def test_cli_prints_the_same_figures(loaded, monkeypatch):
    monkeypatch.setenv("KB_DATA_DIR", str(loaded.config.data_dir))
    monkeypatch.setenv("KB_DATABASE_URL", loaded.config.database_url)
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["trends", "--period", "year", "--format", "json"]).output)
    assert data["totals"] == {"2024": 5}
    rows = runner.invoke(cli, ["trends", "--period", "year", "--format", "csv"]).output.splitlines()
    assert "postmortems,,,2024,5" in rows
    bad = runner.invoke(cli, ["trends", "--from", "2024-13-01"])
    assert bad.exit_code == 1 and "from needs a date written YYYY-MM-DD" in bad.output


def test_cached_figures_follow_every_write(loaded):
    from kb.storage import get_postmortem
    from kb.tags import decide_tag

    with loaded.session() as session:
        before = loaded.trends_cache.get(session=session, period="year", confirmed_only=True)
        assert loaded.trends_cache.get(session=session, period="year", confirmed_only=True) is before
        pm = get_postmortem(session=session, slug="2024-05-12-c")
        decide_tag(session=session, postmortem=pm, label_id="people", status="confirmed", decided_by="ann",
                   labels=loaded.labels)
        session.commit()
        after = loaded.trends_cache.get(session=session, period="year", confirmed_only=True)
    assert (before.labels["facet"]["people"], after.labels["facet"]["people"]) == ({"2024": 1}, {"2024": 2})


def test_warming_computes_the_views_a_visitor_opens_first(loaded, client, monkeypatch):
    with loaded.session() as session:
        loaded.trends_cache.warm(session=session)
    computed = []
    monkeypatch.setattr("kb.trends.compute_trends", lambda **kw: computed.append(kw))
    assert client.get("/trends").status_code == 200
    assert client.get("/api/trends?period=year").status_code == 200
    assert computed == []
