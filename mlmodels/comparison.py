"""The rules of comparing a model's versions side by side: which versions a request names, each
metric's delta from the baseline (the first version named) and whether it is better or worse, and
the hyperparameters diffed key by key. Pure functions over versions already read
(``selectors.version_comparison`` reads them, in one query)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlmodels.models import METRIC_FIELDS, ModelVersion

# At most this many versions side by side: more columns than a screen reads.
MAX_COMPARED = 8
# Every metric the registry records is better when higher (accuracy, precision, recall, F1).
HIGHER_IS_BETTER = frozenset(METRIC_FIELDS)
METRIC_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1_score": "F1 score"}
# A difference smaller than this is float noise, not a change.
EPSILON = 1e-9
# The rows below the metrics and hyperparameters, each compared on what its value means.
FACT_FIELDS = ("file", "file_size", "file_sha256", "file_count", "artifact_format", "scan_status")
PROVENANCE_FIELDS = ("experiment", "run", "created_by", "note")


MINUS = "\N{MINUS SIGN}"
DIRECTION_LABELS = {"better": "better than the baseline", "worse": "worse than the baseline", "same": "as the baseline"}


class CompareError(ValueError):
    """What is wrong with the versions a request names, in words for the page."""


def requested_numbers(values: Iterable[str]) -> list[int]:
    """The version numbers ``values`` name, in their order, each once; CompareError when they are
    not numbers or fewer than two or more than MAX_COMPARED."""
    numbers: list[int] = []
    for value in values:
        value = (value or "").strip()
        if not value:
            continue
        try:
            number = int(value)
        except ValueError:
            raise CompareError(f"“{value[:40]}” is not a version number. Choose two or more versions.") from None
        if number not in numbers:
            numbers.append(number)
    if len(numbers) > MAX_COMPARED:
        raise CompareError(f"Choose at most {MAX_COMPARED} versions to compare side by side.")
    return numbers


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True)
class MetricCell:
    value: float | None
    # value minus the baseline's value; None for the baseline itself, or when either is not recorded.
    delta: float | None = None
    # "better", "worse" or "same"; "" for the baseline or a delta that cannot be taken.
    direction: str = ""

    @property
    def text(self) -> str:
        return "" if self.value is None else _number(self.value)

    @property
    def delta_text(self) -> str:
        if self.delta is None:
            return ""
        if self.direction == "same":
            return "±0"
        sign = "+" if self.delta > 0 else MINUS
        return sign + _number(abs(self.delta))

    @property
    def arrow(self) -> str:
        return {"better": "▲", "worse": "▼", "same": "="}.get(self.direction, "")

    @property
    def direction_label(self) -> str:
        return DIRECTION_LABELS.get(self.direction, "")


@dataclass(frozen=True)
class MetricRow:
    field: str
    label: str
    cells: list[MetricCell]

    @property
    def differs(self) -> bool:
        return len({cell.value for cell in self.cells}) > 1


def metric_row(metric: str, versions: Sequence[ModelVersion]) -> MetricRow:
    base = getattr(versions[0], metric)
    cells = [MetricCell(base)]
    for version in versions[1:]:
        value = getattr(version, metric)
        if value is None or base is None:
            cells.append(MetricCell(value))
            continue
        delta = value - base
        if abs(delta) < EPSILON:
            direction = "same"
        elif (delta > 0) == (metric in HIGHER_IS_BETTER):
            direction = "better"
        else:
            direction = "worse"
        cells.append(MetricCell(value, delta, direction))
    return MetricRow(metric, METRIC_LABELS.get(metric, metric), cells)


@dataclass(frozen=True)
class ParamCell:
    # The value as JSON; None when the version has no such key.
    text: str | None
    # Against the baseline: "same", "added", "removed" or "changed"; "" for the baseline.
    change: str = ""

    @property
    def change_label(self) -> str:
        return {"added": "+ added", "removed": f"{MINUS} removed", "changed": "≠ changed"}.get(self.change, "")


@dataclass(frozen=True)
class ParamRow:
    key: str
    cells: list[ParamCell]

    @property
    def differs(self) -> bool:
        return any(cell.change not in ("", "same") for cell in self.cells)


_ABSENT = object()


def flat_parameters(parameters: Any, prefix: str = "") -> dict[str, Any]:
    """``parameters`` (a JSON object) with nested objects spread into dotted keys
    (``{"optimizer": {"lr": 0.1}}`` → ``{"optimizer.lr": 0.1}``), so that one nested change is one row."""
    if not isinstance(parameters, dict):
        return {} if parameters in (None, "") else {prefix.rstrip(".") or "(value)": parameters}
    flat: dict[str, Any] = {}
    for key, value in parameters.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_parameters(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def parameter_rows(versions: Sequence[ModelVersion]) -> list[ParamRow]:
    """One row per hyperparameter any of ``versions`` has, sorted by key; each version's value as
    JSON, marked added, removed, changed or the same as the baseline's."""
    flats = [flat_parameters(version.hyperparameters) for version in versions]
    keys = sorted({key for flat in flats for key in flat})
    rows = []
    for key in keys:
        base = flats[0].get(key, _ABSENT)
        cells = [ParamCell(None if base is _ABSENT else as_json(base))]
        for flat in flats[1:]:
            value = flat.get(key, _ABSENT)
            if value is _ABSENT:
                change = "same" if base is _ABSENT else "removed"
            elif base is _ABSENT:
                change = "added"
            else:
                change = "same" if as_json(value) == as_json(base) else "changed"
            cells.append(ParamCell(None if value is _ABSENT else as_json(value), change))
        rows.append(ParamRow(key, cells))
    return rows


def _fact(version: ModelVersion, name: str) -> Any:
    """What a row compares of ``version``: a file by its name (each version stores its own copy),
    links by what they point at."""
    if name == "file":
        return version.file.rsplit("/", 1)[-1] if version.file else None
    if name in ("experiment", "run", "created_by"):
        return getattr(version, f"{name}_id")
    return getattr(version, name)


@dataclass(frozen=True)
class Column:
    version: ModelVersion
    # The query string comparing the same versions with this one as the baseline.
    baseline_query: str


@dataclass
class Comparison:
    """Versions side by side; ``error`` says why there is nothing to show."""

    numbers: list[int] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    error: str | None = None
    metrics: list[MetricRow] = field(default_factory=list)
    hyperparameters: list[ParamRow] = field(default_factory=list)
    # Whether each of FACT_FIELDS and PROVENANCE_FIELDS differs between the versions.
    differs: dict[str, bool] = field(default_factory=dict)

    @property
    def baseline(self) -> ModelVersion | None:
        return self.versions[0] if self.versions else None

    @property
    def columns(self) -> list[Column]:
        numbers = [version.version_number for version in self.versions]
        return [
            Column(version, "&".join(f"v={n}" for n in [number, *(m for m in numbers if m != number)]))
            for version, number in zip(self.versions, numbers, strict=True)
        ]

    @property
    def any_folder(self) -> bool:
        return any(version.file_count for version in self.versions)

    @property
    def changed_parameters(self) -> int:
        return sum(row.differs for row in self.hyperparameters)


def compare_versions(versions: Sequence[ModelVersion]) -> Comparison:
    """``versions`` (two or more, the baseline first) compared."""
    versions = list(versions)
    return Comparison(
        numbers=[version.version_number for version in versions],
        versions=versions,
        metrics=[metric_row(metric, versions) for metric in METRIC_FIELDS],
        hyperparameters=parameter_rows(versions),
        differs={
            name: len({repr(_fact(version, name)) for version in versions}) > 1
            for name in (*FACT_FIELDS, *PROVENANCE_FIELDS)
        },
    )


@dataclass(frozen=True)
class VersionDelta(MetricCell):
    """A metric of one version in the versions table, against the next older version there."""

    # The version compared against; None for the oldest, which has nothing to differ from.
    previous: int | None = None

    @property
    def direction_label(self) -> str:
        return {
            "better": f"better than v{self.previous}",
            "worse": f"worse than v{self.previous}",
            "same": f"the same as v{self.previous}",
        }.get(self.direction, "")


def version_deltas(versions: Sequence[ModelVersion]) -> list[list[VersionDelta]]:
    """For each of ``versions`` (newest first, as the versions table lists them) its metrics in
    METRIC_FIELDS order, each against the version listed after it; the last one listed gets no deltas."""
    rows: list[list[VersionDelta]] = []
    for index, version in enumerate(versions):
        older = versions[index + 1] if index + 1 < len(versions) else None
        if older is None:
            rows.append([VersionDelta(getattr(version, metric)) for metric in METRIC_FIELDS])
            continue
        # The compare view's rule, with the older version as the baseline: one rule for both pages.
        cells = [metric_row(metric, [older, version]).cells[1] for metric in METRIC_FIELDS]
        rows.append(
            [VersionDelta(cell.value, cell.delta, cell.direction, previous=older.version_number) for cell in cells]
        )
    return rows
