"""Load and check the taxonomy file that names the labels, their cue phrases and thresholds."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KINDS = ("facet", "category")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class TaxonomyError(Exception):
    """A taxonomy file that cannot be read or is not valid."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}: " + "; ".join(problems))


@dataclass(frozen=True)
class LabelDef:
    id: str
    kind: str
    description: str
    cues: tuple[str, ...]
    weak: tuple[str, ...] = ()  # phrases that suggest the label only together with others
    negative: tuple[str, ...] = ()
    threshold: float | None = None


@dataclass(frozen=True)
class Taxonomy:
    labels: tuple[LabelDef, ...]
    threshold: float = 0.5
    cue_weight: float = 0.55
    weak_cue_weight: float = 0.2
    section_weights: dict[str, float] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[LabelDef]:
        """Return the labels of one kind, in file order."""
        return [label for label in self.labels if label.kind == kind]

    def get(self, label_id: str) -> LabelDef | None:
        """Return the label with this id, or None."""
        return next((label for label in self.labels if label.id == label_id), None)

    def threshold_for(self, label_id: str) -> float:
        """Return the label's own threshold, else the default."""
        label = self.get(label_id)
        return label.threshold if label and label.threshold is not None else self.threshold


def read_taxonomy_data(path: str | Path) -> dict:
    """Read a TOML or YAML taxonomy file into a dictionary."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TaxonomyError(path, [f"cannot read file: {error.strerror or error}"]) from None
    try:
        data = yaml.safe_load(raw) if path.suffix.lower() in (".yaml", ".yml") else tomllib.loads(raw)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise TaxonomyError(path, [f"not valid {path.suffix.lstrip('.').upper()}: {error}"]) from None
    if not isinstance(data, dict):
        raise TaxonomyError(path, ["the file must hold a mapping with a 'label' list"])
    return data


def check_taxonomy_data(data: dict) -> list[str]:
    """Return every problem in taxonomy data: bad ids, duplicates, empty labels, shared cues."""
    problems: list[str] = []
    labels = data.get("label")
    if not isinstance(labels, list) or not labels:
        return ["no labels: the file needs a non-empty 'label' list"]
    ids = Counter()
    cue_owner: dict[str, list[str]] = {}
    for position, entry in enumerate(labels, start=1):
        if not isinstance(entry, dict):
            problems.append(f"label #{position} is not a table of fields")
            continue
        label_id = entry.get("id")
        name = f"label {label_id!r}" if label_id else f"label #{position}"
        if not isinstance(label_id, str) or not SLUG_RE.match(label_id):
            problems.append(f"{name}: id must be a kebab-case slug such as 'data-drift'")
        else:
            ids[label_id] += 1
        if entry.get("kind") not in KINDS:
            problems.append(f"{name}: kind must be one of {', '.join(KINDS)}")
        all_cues = []
        for field_name in ("cues", "weak", "negative"):
            cues = entry.get(field_name, [])
            if not isinstance(cues, list) or not all(isinstance(c, str) and c.strip() for c in cues):
                problems.append(f"{name}: {field_name} must be a list of non-empty phrases")
            elif field_name != "negative":
                all_cues += cues
        if not all_cues:
            problems.append(f"{name}: has no cue phrases, so the rules can never suggest it")
        for cue in all_cues:
            cue_owner.setdefault(cue.strip().lower(), []).append(str(label_id))
        threshold = entry.get("threshold")
        if threshold is not None and not (isinstance(threshold, int | float) and 0 < threshold < 1):
            problems.append(f"{name}: threshold must be a number between 0 and 1")
    problems += [f"duplicate label id {label_id!r} ({n} times)" for label_id, n in ids.items() if n > 1]
    for cue, owners in cue_owner.items():
        distinct = list(dict.fromkeys(owners))
        if len(distinct) > 1:
            problems.append(f"cue {cue!r} is shared by labels {', '.join(distinct)}")
        elif len(owners) > 1:
            problems.append(f"cue {cue!r} is listed {len(owners)} times in label {distinct[0]!r}")
    return problems


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Load a taxonomy file, raising TaxonomyError with every problem found."""
    data = read_taxonomy_data(path)
    problems = check_taxonomy_data(data)
    if problems:
        raise TaxonomyError(path, problems)
    settings = data.get("tagger", {})
    labels = tuple(
        LabelDef(
            id=entry["id"],
            kind=entry["kind"],
            description=str(entry.get("description", "")).strip(),
            cues=tuple(c.strip() for c in entry.get("cues", [])),
            weak=tuple(c.strip() for c in entry.get("weak", [])),
            negative=tuple(c.strip() for c in entry.get("negative", [])),
            threshold=entry.get("threshold"),
        )
        for entry in data["label"]
    )
    return Taxonomy(
        labels=labels,
        threshold=float(settings.get("threshold", 0.5)),
        cue_weight=float(settings.get("cue_weight", 0.55)),
        weak_cue_weight=float(settings.get("weak_cue_weight", 0.2)),
        section_weights={k: float(v) for k, v in settings.get("section_weights", {}).items()},
    )
