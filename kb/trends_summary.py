"""Words from trend figures: what rose and fell, and a written summary of each period."""

from __future__ import annotations

from dataclasses import dataclass

from kb.trends import Trends

TRAILING_PERIODS = 4
MIN_CHANGE = 2  # a label must move by at least this many postmortems to be named in a summary
MAX_NAMED = 3


@dataclass
class Change:
    label: str
    kind: str
    last: int
    trailing: float  # average over the periods before the last one
    periods: int  # how many earlier periods the average covers

    @property
    def delta(self) -> float:
        return self.last - self.trailing

    def as_dict(self) -> dict:
        return {"label": self.label, "kind": self.kind, "last": self.last, "trailing_average": round(self.trailing, 2),
                "periods": self.periods, "delta": round(self.delta, 2)}


def label_changes(trends: Trends, *, window: int = TRAILING_PERIODS) -> list[Change]:
    """Compare each label's last period with the average of up to `window` periods before it, largest rise first."""
    if len(trends.periods) < 2:
        return []
    last, earlier = trends.periods[-1], trends.periods[-1 - window : -1]
    changes = [
        Change(label, kind, series[last], sum(series[p] for p in earlier) / len(earlier), len(earlier))
        for kind, labels in trends.labels.items()
        for label, series in labels.items()
        if series[last] or any(series[p] for p in earlier)
    ]
    return sorted(changes, key=lambda c: (-c.delta, c.label))


def format_hours(hours: float) -> str:
    """Return a duration for people: minutes, hours or days."""
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h".replace(".0 h", " h")
    return f"{hours / 24:.0f} d"


def period_summary(trends: Trends, name: str) -> str:
    """Return a few sentences on one period, compared with the period before it."""
    index = trends.periods.index(name)
    count = trends.totals[name]
    noun = "postmortem" if count == 1 else "postmortems"
    if index == 0:
        return f"{name}: {count} {noun}."
    previous = trends.periods[index - 1]
    before = trends.totals[previous]
    parts = [f"{name}: {count} {noun} ({count - before:+d} vs {previous})."]
    moves = []
    for kind, labels in trends.labels.items():
        for label, series in labels.items():
            now, then = series[name], series[previous]
            if abs(now - then) >= MIN_CHANGE:
                moves.append((abs(now - then), kind, label, now, then))
    phrases = []
    for _size, kind, label, now, then in sorted(moves, key=lambda m: (-m[0], m[2]))[:MAX_NAMED]:
        if kind == "facet":
            phrases.append(f"{label} was cited in {now}, {'up' if now > then else 'down'} from {then}")
        else:
            phrases.append(f"{label} {'rose' if now > then else 'fell'} from {then} to {now}")
    detect = trends.period_durations.get("detect", {})
    if name in detect and previous in detect:
        now_h, then_h = format_hours(detect[name].median_hours), format_hours(detect[previous].median_hours)
        if now_h == then_h:
            phrases.append(f"median time to detect stayed at {now_h}")
        else:
            verb = "grew" if detect[name].median_hours > detect[previous].median_hours else "shrank"
            phrases.append(f"median time to detect {verb} from {then_h} to {now_h}")
    if phrases:
        sentence = "; ".join(phrases)
        parts.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(parts)


def summaries(trends: Trends) -> dict[str, str]:
    """Return the written summary of every period, newest first."""
    return {name: period_summary(trends, name) for name in reversed(trends.periods)}


def trends_document(trends: Trends) -> dict:
    """Return every figure with the written summaries and the rising and falling labels, as plain data."""
    data = trends.as_dict()
    data["summaries"] = summaries(trends)
    data["changes"] = [change.as_dict() for change in label_changes(trends)]
    return data
