"""Counts of labels over time, aggregated in SQL, for the trends page, API and CLI."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, cast, extract, func
from sqlmodel import Session, select

from kb.errors import InvalidQuery
from kb.models import Label, Postmortem, PostmortemLabel

PERIODS = ("month", "quarter", "year")


@dataclass
class Trends:
    period: str
    periods: list[str]
    totals: dict[str, int]
    labels: dict[str, dict[str, dict[str, int]]]  # kind -> label -> period -> count

    def as_dict(self) -> dict:
        return {"period": self.period, "periods": self.periods, "totals": self.totals, "labels": self.labels}


def _period_columns(period: str):
    year = cast(extract("year", Postmortem.incident_date), Integer)
    month = cast(extract("month", Postmortem.incident_date), Integer)
    if period == "year":
        return (year,)
    if period == "quarter":
        return (year, (month - 1) // 3 + 1)
    return (year, month)


def period_name(period: str, parts: Sequence[int]) -> str:
    """Return the display name of a period: 2024, 2024-Q3 or 2024-07."""
    if period == "year":
        return str(parts[0])
    if period == "quarter":
        return f"{parts[0]}-Q{parts[1]}"
    return f"{parts[0]}-{parts[1]:02d}"


def _all_periods(period: str, first: Sequence[int], last: Sequence[int]) -> list[str]:
    if period == "year":
        return [str(y) for y in range(first[0], last[0] + 1)]
    per_year = 4 if period == "quarter" else 12
    names, (year, part) = [], (first[0], first[1])
    while (year, part) <= (last[0], last[1]):
        names.append(period_name(period, (year, part)))
        year, part = (year + 1, 1) if part == per_year else (year, part + 1)
    return names


def compute_trends(*, session: Session, period: str = "quarter", confirmed_only: bool = False) -> Trends:
    """Return postmortems per period and, per label, how many postmortems cite it in each period."""
    if period not in PERIODS:
        raise InvalidQuery(f"period must be one of {', '.join(PERIODS)}")
    columns = _period_columns(period)
    dated = Postmortem.incident_date.is_not(None)
    totals_rows = session.exec(select(*columns, func.count(Postmortem.id)).where(dated).group_by(*columns)).all()
    if not totals_rows:
        return Trends(period, [], {}, {})
    keys = sorted(tuple(int(v) for v in row[:-1]) for row in totals_rows)
    periods = _all_periods(period, keys[0], keys[-1])
    totals = dict.fromkeys(periods, 0)
    for row in totals_rows:
        totals[period_name(period, [int(v) for v in row[:-1]])] = int(row[-1])

    status_ok = PostmortemLabel.status == "confirmed" if confirmed_only else PostmortemLabel.status != "rejected"
    query = (
        select(Label.kind, PostmortemLabel.label_id, *columns, func.count(func.distinct(Postmortem.id)))
        .join(Postmortem, Postmortem.id == PostmortemLabel.postmortem_id)
        .join(Label, Label.id == PostmortemLabel.label_id)
        .where(dated, status_ok)
        .group_by(Label.kind, PostmortemLabel.label_id, *columns)
    )
    all_labels = session.exec(select(Label.kind, Label.id).order_by(Label.kind, Label.id)).all()
    labels: dict[str, dict[str, dict[str, int]]] = {}
    for kind, label_id in all_labels:
        labels.setdefault(kind, {})[label_id] = dict.fromkeys(periods, 0)
    for kind, label_id, *parts, count in session.exec(query):
        labels[kind][label_id][period_name(period, [int(v) for v in parts])] = int(count)
    return Trends(period, periods, totals, labels)


def period_bounds(period: str, name: str) -> tuple[str, str]:
    """Return the first and last day (YYYY-MM-DD) of a period named by period_name."""
    if period == "year":
        return f"{name}-01-01", f"{name}-12-31"
    year, part = name.split("-")
    first_month = (int(part[1:]) - 1) * 3 + 1 if period == "quarter" else int(part)
    last_month = first_month + 2 if period == "quarter" else first_month
    last_day = calendar.monthrange(int(year), last_month)[1]
    return f"{year}-{first_month:02d}-01", f"{year}-{last_month:02d}-{last_day:02d}"
