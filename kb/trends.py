"""Trend figures for managers, every one aggregated in SQL: labels, severities, services and times per period."""

from __future__ import annotations

import calendar
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date

from sqlalchemy import Integer, case, cast, extract, func, literal, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from kb.errors import InvalidQuery
from kb.models import Label, Postmortem, PostmortemLabel, PostmortemService

PERIODS = ("month", "quarter", "year")
TOP_SERVICES = 10
# Buckets for the distribution of times to detect and resolve: (name, upper bound in seconds).
DURATION_BUCKETS = (("< 1 h", 3600), ("1–6 h", 6 * 3600), ("6–24 h", 86400), ("1–3 d", 3 * 86400),
                    ("3–7 d", 7 * 86400), ("> 7 d", None))
# Time to detect runs from the start to detection; time to resolve from detection to resolution.
DURATIONS = {"detect": "detect_seconds", "resolve": "resolve_seconds"}


@dataclass
class DurationStats:
    median_hours: float | None
    count: int
    buckets: dict[str, int] = field(default_factory=dict)


@dataclass
class Trends:
    period: str
    periods: list[str]
    totals: dict[str, int]
    labels: dict[str, dict[str, dict[str, int]]]  # kind -> label -> period -> postmortems citing it
    severity: dict[str, dict[str, int]] = field(default_factory=dict)  # severity -> period -> count
    cooccurrence: dict[str, dict[str, int]] = field(default_factory=dict)  # facet -> category -> count
    services: list[tuple[str, int]] = field(default_factory=list)
    durations: dict[str, dict[str, DurationStats]] = field(default_factory=dict)  # detect|resolve -> label
    period_durations: dict[str, dict[str, DurationStats]] = field(default_factory=dict)  # detect -> period
    confirmed_only: bool = False
    start: str | None = None
    end: str | None = None

    def share(self, count: int, period: str) -> float:
        """Return count as a share of the period's postmortems."""
        total = self.totals.get(period, 0)
        return count / total if total else 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["services"] = [{"service": name, "count": count} for name, count in self.services]
        return data

    def as_rows(self) -> list[list]:
        """Return every figure as a row of (figure, kind, label, period, value), for CSV."""
        rows: list[list] = [["figure", "kind", "label", "period", "value"]]
        rows += [["postmortems", "", "", p, n] for p, n in self.totals.items()]
        for kind, labels in self.labels.items():
            for label, series in labels.items():
                rows += [["postmortems citing label", kind, label, p, n] for p, n in series.items()]
                rows += [["share of postmortems", kind, label, p, round(self.share(n, p), 4)]
                         for p, n in series.items()]
        for level, series in self.severity.items():
            rows += [["severity", "", level, p, n] for p, n in series.items()]
        for facet, categories in self.cooccurrence.items():
            rows += [["facet with category", facet, category, "", n] for category, n in categories.items()]
        rows += [["service", "", name, "", n] for name, n in self.services]
        for which in DURATIONS:
            rows += [[f"median hours to {which}", "", label, "", s.median_hours]
                     for label, s in self.durations[which].items()]
            rows += [[f"median hours to {which}", "", "", p, s.median_hours]
                     for p, s in self.period_durations[which].items()]
        return rows


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


def _name(period: str, parts) -> str:
    return period_name(period, [int(v) for v in parts])


def _all_periods(period: str, first: Sequence[int], last: Sequence[int]) -> list[str]:
    if period == "year":
        return [str(y) for y in range(first[0], last[0] + 1)]
    per_year = 4 if period == "quarter" else 12
    names, (year, part) = [], (first[0], first[1])
    while (year, part) <= (last[0], last[1]):
        names.append(period_name(period, (year, part)))
        year, part = (year + 1, 1) if part == per_year else (year, part + 1)
    return names


def period_bounds(period: str, name: str) -> tuple[str, str]:
    """Return the first and last day (YYYY-MM-DD) of a period named by period_name."""
    if period == "year":
        return f"{name}-01-01", f"{name}-12-31"
    year, part = name.split("-")
    first_month = (int(part[1:]) - 1) * 3 + 1 if period == "quarter" else int(part)
    last_month = first_month + 2 if period == "quarter" else first_month
    last_day = calendar.monthrange(int(year), last_month)[1]
    return f"{year}-{first_month:02d}-01", f"{year}-{last_month:02d}-{last_day:02d}"


def parse_day(value: str | None, name: str) -> date | None:
    """Return a YYYY-MM-DD option as a date, or raise InvalidQuery."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidQuery(f"{name} needs a date written YYYY-MM-DD, not {value!r}") from None


def compute_trends(
    *, session: Session, period: str = "quarter", confirmed_only: bool = False,
    start: str | None = None, end: str | None = None,
) -> Trends:
    """Return every trend figure for postmortems dated from start to end (inclusive), per period."""
    if period not in PERIODS:
        raise InvalidQuery(f"period must be one of {', '.join(PERIODS)}")
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first and last and first > last:
        raise InvalidQuery("from is later than to, so no postmortem can be in the range")
    columns = _period_columns(period)
    in_range = [Postmortem.incident_date.is_not(None)]
    if first:
        in_range.append(Postmortem.incident_date >= first)
    if last:
        in_range.append(Postmortem.incident_date <= last)

    totals_rows = session.exec(select(*columns, func.count(Postmortem.id)).where(*in_range).group_by(*columns)).all()
    trends = Trends(period, [], {}, {}, confirmed_only=confirmed_only, start=start or None, end=end or None)
    if not totals_rows:
        return trends
    keys = sorted(tuple(int(v) for v in row[:-1]) for row in totals_rows)
    trends.periods = _all_periods(period, keys[0], keys[-1])
    trends.totals = dict.fromkeys(trends.periods, 0)
    for *parts, count in totals_rows:
        trends.totals[_name(period, parts)] = int(count)

    def counted(tag=PostmortemLabel):
        return tag.status == "confirmed" if confirmed_only else tag.status != "rejected"

    trends.labels = _label_counts(session, columns, in_range, counted(), trends)
    trends.severity = _severity_counts(session, columns, in_range, trends)
    trends.cooccurrence = _cooccurrence(session, in_range, counted)
    trends.services = [(name, int(count)) for name, count in session.exec(
        select(PostmortemService.service, func.count())
        .join(Postmortem, Postmortem.id == PostmortemService.postmortem_id)
        .where(*in_range)
        .group_by(PostmortemService.service)
        .order_by(func.count().desc(), PostmortemService.service)
        .limit(TOP_SERVICES)
    )]
    for which in DURATIONS:
        trends.durations[which] = {
            label: stats for (label,), stats in
            _duration_stats(session, which, [PostmortemLabel.label_id], in_range, counted()).items()
        }
        trends.period_durations[which] = {
            _name(period, key): stats for key, stats in
            _duration_stats(session, which, list(columns), in_range, None).items()
        }
    return trends


def _label_counts(session, columns, in_range, status_ok, trends: Trends) -> dict[str, dict[str, dict[str, int]]]:
    query = (
        # A postmortem has at most one tag per label (a unique constraint), so count(*) counts postmortems.
        select(Label.kind, PostmortemLabel.label_id, *columns, func.count())
        .join(Postmortem, Postmortem.id == PostmortemLabel.postmortem_id)
        .join(Label, Label.id == PostmortemLabel.label_id)
        .where(*in_range, status_ok)
        .group_by(Label.kind, PostmortemLabel.label_id, *columns)
    )
    labels: dict[str, dict[str, dict[str, int]]] = {}
    for kind, label_id in session.exec(select(Label.kind, Label.id).order_by(Label.kind, Label.id)):
        labels.setdefault(kind, {})[label_id] = dict.fromkeys(trends.periods, 0)
    for kind, label_id, *parts, count in session.exec(query):
        labels[kind][label_id][_name(trends.period, parts)] = int(count)
    return labels


def _severity_counts(session, columns, in_range, trends: Trends) -> dict[str, dict[str, int]]:
    query = select(Postmortem.severity, *columns, func.count(Postmortem.id)).where(*in_range).group_by(
        Postmortem.severity, *columns)
    severity: dict[str, dict[str, int]] = {}
    for level, *parts, count in session.exec(query):
        series = severity.setdefault(level or "unset", dict.fromkeys(trends.periods, 0))
        series[_name(trends.period, parts)] = int(count)
    return dict(sorted(severity.items(), key=lambda item: (item[0] == "unset", item[0])))


def _cooccurrence(session, in_range, counted) -> dict[str, dict[str, int]]:
    facet_tag, category_tag = aliased(PostmortemLabel), aliased(PostmortemLabel)
    facet_label, category_label = aliased(Label), aliased(Label)
    query = (
        select(facet_tag.label_id, category_tag.label_id, func.count())
        .join(category_tag, category_tag.postmortem_id == facet_tag.postmortem_id)
        .join(facet_label, facet_label.id == facet_tag.label_id)
        .join(category_label, category_label.id == category_tag.label_id)
        .join(Postmortem, Postmortem.id == facet_tag.postmortem_id)
        .where(*in_range, facet_label.kind == "facet", category_label.kind == "category",
               counted(facet_tag), counted(category_tag))
        .group_by(facet_tag.label_id, category_tag.label_id)
    )
    grid: dict[str, dict[str, int]] = {}
    for facet, category, count in session.exec(query):
        grid.setdefault(facet, {})[category] = int(count)
    return grid


def _duration_stats(session, which, key_columns, in_range, status_ok) -> dict[tuple, DurationStats]:
    """Return the median and distribution of a duration per key, with medians found by SQL window functions."""
    seconds = getattr(Postmortem, DURATIONS[which])
    base = select(*[c.label(f"k{i}") for i, c in enumerate(key_columns)], seconds.label("secs")).where(
        *in_range, seconds.is_not(None))
    if status_ok is not None:
        base = base.select_from(PostmortemLabel).join(
            Postmortem, Postmortem.id == PostmortemLabel.postmortem_id).where(status_ok)
    inner = base.subquery()
    keys = [inner.c[f"k{i}"] for i in range(len(key_columns))]
    ranked = select(
        *keys, inner.c.secs,
        func.row_number().over(partition_by=keys, order_by=inner.c.secs).label("rn"),
        func.count(literal(1)).over(partition_by=keys).label("n"),
    ).subquery()
    rkeys = [ranked.c[f"k{i}"] for i in range(len(key_columns))]
    # One pass over the ranked rows gives the median (the middle one or two) and every bucket's count.
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    lower = 0
    bucket_counts = []
    for name, bound in DURATION_BUCKETS:
        inside = ranked.c.secs >= lower if bound is None else (ranked.c.secs >= lower) & (ranked.c.secs < bound)
        bucket_counts.append(func.sum(case((inside, 1), else_=0)).label(name))
        lower = bound
    query = select(*rkeys, func.avg(case((middle, ranked.c.secs))), func.max(ranked.c.n), *bucket_counts).group_by(
        *rkeys)
    width = len(key_columns)
    return {
        tuple(row[:width]): DurationStats(
            round(float(row[width]) / 3600, 2), int(row[width + 1]),
            {name: int(count) for (name, _), count in zip(DURATION_BUCKETS, row[width + 2 :], strict=True)},
        )
        for row in session.exec(query)
    }


def data_version(session: Session) -> tuple:
    """Return a cheap fingerprint that changes whenever a postmortem or a tag decision changes."""
    postmortems = session.exec(select(func.count(Postmortem.id), func.max(Postmortem.updated_at))).one()
    tags = session.exec(select(func.count(PostmortemLabel.id), func.max(PostmortemLabel.id),
                               func.max(PostmortemLabel.decided_at))).one()
    return (*postmortems, *tags)


# The trend views a visitor lands on first: the page's defaults and the other periods.
DEFAULT_VIEWS = tuple({"period": period, "confirmed_only": False, "start": None, "end": None}
                      for period in ("quarter", "year", "month"))


class TrendsCache:
    """Keep recent trend figures until the data changes: they are read far more often than written."""

    def __init__(self, size: int = 32):
        self.size = size
        self._entries: OrderedDict[tuple, Trends] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, *, session: Session, **params) -> Trends:
        """Return compute_trends(**params), computed again only when the data changed."""
        key = (tuple(sorted(params.items())), data_version(session))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        trends = compute_trends(session=session, **params)
        with self._lock:
            self._entries[key] = trends
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return trends

    def warm(self, *, session: Session, views: Sequence[dict] = DEFAULT_VIEWS) -> None:
        """Compute the views people open most, so the first visit after a write does not wait."""
        for params in views:
            self.get(session=session, **params)
