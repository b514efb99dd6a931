"""kb.trends.compute_trends on rows written straight to the database: periods, ranges and which tags count."""

from __future__ import annotations

from datetime import date

import pytest

from kb.errors import InvalidQuery
from kb.models import Postmortem, PostmortemLabel
from kb.trends import compute_trends, period_bounds

# slug: (incident date, severity, {label: (source, status)})
ROWS = {
    "nov": (date(2023, 11, 20), "SEV1", {"data-drift": ("auto", "suggested"), "structure": ("human", "confirmed")}),
    "jan": (date(2024, 1, 15), "SEV2", {"data-drift": ("human", "confirmed"), "processes": ("auto", "suggested")}),
    "leap": (date(2024, 2, 29), "SEV2", {"data-drift": ("human", "rejected"), "structure": ("auto", "suggested")}),
    "may": (date(2024, 5, 2), "", {"data-drift": ("auto", "suggested")}),
    "undated": (None, "SEV1", {"data-drift": ("human", "confirmed")}),
}


@pytest.fixture
def session(kb):
    with kb.session() as session:
        for slug, (day, severity, tags) in ROWS.items():
            pm = Postmortem(slug=slug, title=slug, incident_date=day, severity=severity)
            session.add(pm)
            session.flush()
            for label, (source, status) in tags.items():
                session.add(PostmortemLabel(postmortem_id=pm.id, label_id=label, source=source, status=status))
        session.commit()
        yield session


def test_quarters_count_every_tag_that_is_not_rejected(session):
    trends = compute_trends(session=session, period="quarter")
    assert trends.periods == ["2023-Q4", "2024-Q1", "2024-Q2"]
    assert trends.totals == {"2023-Q4": 1, "2024-Q1": 2, "2024-Q2": 1}
    assert trends.labels["category"]["data-drift"] == {"2023-Q4": 1, "2024-Q1": 1, "2024-Q2": 1}
    assert trends.labels["facet"]["structure"] == {"2023-Q4": 1, "2024-Q1": 1, "2024-Q2": 0}
    assert trends.labels["facet"]["people"] == {"2023-Q4": 0, "2024-Q1": 0, "2024-Q2": 0}
    assert trends.severity == {"SEV1": {"2023-Q4": 1, "2024-Q1": 0, "2024-Q2": 0},
                               "SEV2": {"2023-Q4": 0, "2024-Q1": 2, "2024-Q2": 0},
                               "unset": {"2023-Q4": 0, "2024-Q1": 0, "2024-Q2": 1}}
    assert trends.cooccurrence == {"structure": {"data-drift": 1}, "processes": {"data-drift": 1}}


def test_confirmed_only_counts_human_confirmations(session):
    trends = compute_trends(session=session, period="quarter", confirmed_only=True)
    assert trends.totals == {"2023-Q4": 1, "2024-Q1": 2, "2024-Q2": 1}
    assert trends.labels["category"]["data-drift"] == {"2023-Q4": 0, "2024-Q1": 1, "2024-Q2": 0}
    assert trends.labels["facet"]["structure"] == {"2023-Q4": 1, "2024-Q1": 0, "2024-Q2": 0}
    assert trends.cooccurrence == {}
    assert trends.confirmed_only is True


def test_months_fill_the_gaps_and_years_add_up(session):
    months = compute_trends(session=session, period="month")
    assert months.totals == {"2023-11": 1, "2023-12": 0, "2024-01": 1, "2024-02": 1, "2024-03": 0, "2024-04": 0,
                             "2024-05": 1}
    assert months.labels["category"]["data-drift"] == {"2023-11": 1, "2023-12": 0, "2024-01": 1, "2024-02": 0,
                                                       "2024-03": 0, "2024-04": 0, "2024-05": 1}
    years = compute_trends(session=session, period="year")
    assert (years.periods, years.totals, years.labels["category"]["data-drift"]) == (
        ["2023", "2024"], {"2023": 1, "2024": 3}, {"2023": 1, "2024": 2})


def test_a_date_range_is_inclusive(session):
    trends = compute_trends(session=session, period="month", start="2024-01-15", end="2024-02-29")
    assert (trends.periods, trends.totals, trends.start, trends.end) == (
        ["2024-01", "2024-02"], {"2024-01": 1, "2024-02": 1}, "2024-01-15", "2024-02-29")


def test_no_dated_postmortems_means_no_periods(session):
    trends = compute_trends(session=session, start="2030-01-01")
    assert (trends.periods, trends.totals, trends.labels) == ([], {}, {})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": "week"}, "period must be one of month, quarter, year"),
        ({"start": "2024-02-30"}, "from needs a date written YYYY-MM-DD, not '2024-02-30'"),
        ({"end": "May"}, "to needs a date written YYYY-MM-DD, not 'May'"),
        ({"start": "2024-06-01", "end": "2024-01-01"}, "from is later than to, so no postmortem can be in the range"),
    ],
)
def test_bad_parameters_raise_invalid_query(session, kwargs, message):
    with pytest.raises(InvalidQuery) as caught:
        compute_trends(session=session, **kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("period", "name", "bounds"),
    [
        ("quarter", "2024-Q1", ("2024-01-01", "2024-03-31")),
        ("quarter", "2024-Q2", ("2024-04-01", "2024-06-30")),
        ("quarter", "2023-Q3", ("2023-07-01", "2023-09-30")),
        ("quarter", "2023-Q4", ("2023-10-01", "2023-12-31")),
        ("month", "2024-02", ("2024-02-01", "2024-02-29")),
        ("month", "2023-02", ("2023-02-01", "2023-02-28")),
        ("month", "2023-12", ("2023-12-01", "2023-12-31")),
        ("year", "2024", ("2024-01-01", "2024-12-31")),
    ],
)
def test_period_bounds(period, name, bounds):
    assert period_bounds(period, name) == bounds
