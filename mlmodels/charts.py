"""Metric charts drawn on the server as SVG: no chart library, nothing to load, readable without JS.

The SVG has no viewBox, so nothing in it scales: text is drawn at its CSS size (12 px and up) at any
width. Its height is fixed in pixels and every x is a percentage of its width, so the same markup
fits 375 px and 1280 px. Hover (and keyboard focus) shows a column's values from CSS alone
(static/css/charts.css); static/js/charts.js only adds arrow keys between columns. Every chart comes
with its values as a table, and each focusable column names its values for screen readers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlmodels.models import METRIC_FIELDS

PLOT_TOP = 10  # px above the plot, room for the top tick label
PAD = 4.0  # percent of the width left free at each end of the x axis
MAX_X_LABELS = 14  # x labels shown at most (the current version and aliased ones always)
MARK_ROW = 15  # px per alias/current mark under an x label
CHAR_PX = 7.2  # an estimate of a 12 px character's width, to size the tooltips
MAX_LABEL_CHARS = 18  # longer run names are cut (the full name is in the label's title)
MAX_SLANTED_CHARS = 15  # slanted ones shorter, so that the first fits in the chart's left margin
METRIC_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1_score": "F1 score"}


def fmt(value: float | None) -> str:
    """A value for reading: at most four significant digits, NaN and infinities spelled."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    text = f"{value:.4g}"
    return text if "e" not in text else f"{value:.3e}"


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def nice_range(values: Sequence[float], *, unit: bool = False, ticks: int = 4) -> tuple[float, float, float]:
    """(low, high, step): a y range around ``values`` cut in round steps (1, 2, 2.5 or 5 times a power of ten),
    about ``ticks`` of them. Metrics move in small steps: a fixed 0..1 would flatten them, so the range
    hugs the values; with ``unit`` it stays within 0..1."""
    if not values:
        return (0.0, 1.0, 0.25)
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        span = abs(high) * 0.2 or 0.1
        low, high = low - span / 2, high + span / 2
    else:  # a little air, so that the extremes are not drawn on the frame
        low, high = low - span * 0.06, high + span * 0.06
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    low_tick = math.floor(low / step + 1e-9) * step
    high_tick = math.ceil(high / step - 1e-9) * step
    if high_tick - low_tick < step:
        high_tick = low_tick + step
    if unit:
        low_tick, high_tick = max(0.0, low_tick), min(1.0, high_tick)
        if high_tick <= low_tick:
            low_tick, high_tick = max(0.0, high_tick - step), min(1.0, low_tick + step)
    return (round(low_tick, 12), round(high_tick, 12), step)


def _tick_text(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step * 10**decimals, 6) % 1:  # 2.5 times a power of ten needs one more
        decimals += 1
    return f"{value:.{decimals}f}" if abs(value) < 1e6 else f"{value:.2e}"


@dataclass(frozen=True)
class Point:
    x: float  # percent of the width
    y: float  # px from the top
    value: float
    text: str  # "v3: 0.85"


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    index: int  # its colour and dash: viz-s1 … viz-s4
    points: list[Point]
    segments: list[Segment]
    values: list[float | None]  # one per x position
    latest: float | None

    @property
    def latest_text(self) -> str:
        return fmt(self.latest)


@dataclass(frozen=True)
class Mark:
    dy: int  # px below the x label
    text: str
    kind: str  # "current" or "alias"


@dataclass(frozen=True)
class XTick:
    x: float
    label: str
    full: str
    marks: list[Mark]
    current: bool
    minor: bool  # left out on narrow screens


@dataclass(frozen=True)
class TipLine:
    y: int
    label: str
    value: str
    index: int | None  # the series' colour, or None for a muted line


@dataclass(frozen=True)
class Column:
    """One x position's hover and focus target: its guide line, its points ringed, its tooltip."""

    x: float
    left: float
    width: float
    label: str  # what a screen reader says
    heading: str
    lines: list[TipLine]
    rings: list[tuple[float, int]]  # (y, series index)
    tip_x: int
    tip_y: int
    tip_width: int
    tip_height: int
    href: str = ""

    @property
    def value_x(self) -> int:
        return self.tip_x + self.tip_width - 10


@dataclass(frozen=True)
class Rule:
    x: float
    kind: str  # "current" or "alias"


@dataclass(frozen=True)
class TableRow:
    label: str
    marks: list[str]
    values: list[str]
    href: str = ""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str  # what the figure shows: "Accuracy by version"
    x_title: str
    plot_top: int
    axis_y: int
    label_y: int
    x_title_y: int
    height: int
    rotate: bool
    interactive: bool  # focusable columns (the overlay, the runs chart); else role="img"
    y_ticks: list[tuple[float, str]]
    x_ticks: list[XTick]
    series: list[Series]
    columns: list[Column]
    rules: list[Rule]
    rows: list[TableRow]
    x_heading: str  # the table's first column
    compact: bool = False

    @property
    def tick_y2(self) -> int:
        return self.axis_y + 5

    @property
    def has_marks(self) -> bool:
        return any(row.marks for row in self.rows)


def line_chart(
    *,
    id: str,
    title: str,
    x_title: str,
    x_heading: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    marks: dict[int, list[tuple[str, str]]] | None = None,
    current: int | None = None,
    hrefs: Sequence[str] | None = None,
    plot_height: int = 220,
    rotate: bool | None = None,
    unit: bool = False,
    interactive: bool = True,
    compact: bool = False,
    indexes: Sequence[int] | None = None,
) -> Chart:
    """A line chart of ``series`` ((key, label, one value or None per x)) over the x positions
    ``labels``, in that order. ``marks`` are the (text, kind) shown under an x label (the current
    version, aliases); ``current`` the index of the position drawn with a solid rule; ``hrefs`` a
    link for each position (a run's page). Values that are None, NaN or infinite are not drawn."""
    marks = marks or {}
    count = len(labels)
    if rotate is None:
        # Slanted labels when they would not fit side by side in a phone's ~240 px plot (which shows
        # every other label when there are more than 7).
        longest = min(max((len(label) for label in labels), default=0), MAX_LABEL_CHARS)
        side_by_side = min(count, MAX_X_LABELS)
        side_by_side = math.ceil(side_by_side / 2) if side_by_side > 7 else side_by_side
        rotate = side_by_side * (longest + 2) * 6.5 > 240
    step = (100 - 2 * PAD) / (count - 1) if count > 1 else 0.0
    xs = [round(PAD + index * step, 3) if count > 1 else 50.0 for index in range(count)]
    finite = [value for _, _, values in series for value in values if _finite(value)]
    low, high, tick_step = nice_range(finite, unit=unit, ticks=4 if plot_height >= 180 else 3)
    span = (high - low) or 1.0

    def y_of(value: float) -> float:
        return round(PLOT_TOP + (high - value) / span * plot_height, 1)

    y_ticks = []
    tick = low
    while tick <= high + tick_step / 1000:
        y_ticks.append((y_of(tick), _tick_text(tick, tick_step)))
        tick += tick_step

    drawn = []
    for position, (key, label, values) in enumerate(series):
        index = indexes[position] if indexes else position + 1
        points = [
            Point(xs[i], y_of(value), value, f"{labels[i]}: {fmt(value)}")
            for i, value in enumerate(values)
            if _finite(value)
        ]
        segments = [Segment(a.x, a.y, b.x, b.y) for a, b in itertools.pairwise(points)]
        latest = next((value for value in reversed(values) if value is not None), None)
        drawn.append(Series(key, label, index, points, segments, list(values), latest))

    axis_y = PLOT_TOP + plot_height
    label_y = axis_y + 18
    # Which x labels to show: every n-th, and always the first, the last, the current and the marked.
    stride = max(1, math.ceil(count / MAX_X_LABELS))
    important = {0, count - 1, *marks, *([current] if current is not None else [])}
    shown = [i for i in range(count) if i % stride == 0 or i in important]
    x_ticks = []
    plain = 0
    cut = MAX_SLANTED_CHARS if rotate else MAX_LABEL_CHARS
    for i in shown:
        full = labels[i]
        short = full if len(full) <= cut else full[: cut - 1] + "…"
        minor = False
        if i not in important and len(shown) > 7:  # on narrow screens, every other plain label
            plain += 1
            minor = plain % 2 == 1
        tick_marks = [Mark(MARK_ROW * (row + 1), text, kind) for row, (text, kind) in enumerate(marks.get(i, []))]
        x_ticks.append(XTick(xs[i], short, full, tick_marks, i == current, minor))
    if rotate:
        longest = max((len(t.label) for t in x_ticks), default=4)
        label_height = int(longest * CHAR_PX * 0.71) + 4  # slanted at 45°
    else:
        label_height = 6
    mark_rows = max((len(tick.marks) for tick in x_ticks), default=0)
    x_title_y = label_y + label_height + MARK_ROW * mark_rows + 16
    height = x_title_y + 8 if not compact else x_title_y - 12  # a small multiple has no x title

    rules = [Rule(xs[i], "alias") for i in sorted(marks) if i != current and 0 <= i < count]
    if current is not None and 0 <= current < count:
        rules.append(Rule(xs[current], "current"))

    columns, rows = [], []
    for i in range(count):
        mark_texts = [text for text, _ in marks.get(i, [])]
        heading = labels[i] + "".join(f" · {text}" for text in mark_texts)
        recorded = [(s, s.values[i]) for s in drawn if s.values[i] is not None]
        rows.append(TableRow(labels[i], mark_texts, [fmt(s.values[i]) for s in drawn], hrefs[i] if hrefs else ""))
        if not recorded:
            continue
        if len(drawn) == 1:
            head = f"{labels[i]}: {fmt(recorded[0][1])}"
            lines = [TipLine(34, text, "", None) for text in mark_texts]
            spoken = f"{head}" + "".join(f", {text}" for text in mark_texts)
            heading = head
        else:
            lines = [TipLine(34 + 18 * n, s.label, fmt(value), s.index) for n, (s, value) in enumerate(recorded)]
            spoken = f"{heading}: " + ", ".join(f"{s.label} {fmt(value)}" for s, value in recorded)
        widest = max([len(heading)] + [len(line.label) + len(line.value) + 4 for line in lines])
        tip_width = int(widest * CHAR_PX) + 20
        tip_height = 24 + 18 * len(lines)
        # The tooltip slides along its point by the point's share of the width: it fits inside the plot
        # whenever the plot is wider than the tooltip, whatever the width. It sits at the bottom of the
        # plot when the column's values are in its upper half, at the top otherwise.
        highest = min((y_of(value) for _, value in recorded if _finite(value)), default=axis_y)
        tip_y = axis_y - tip_height - 6 if highest < PLOT_TOP + plot_height / 2 else PLOT_TOP
        left = max(0.0, xs[i] - (step / 2 if count > 1 else 50))
        right = min(100.0, xs[i] + (step / 2 if count > 1 else 50))
        if i == 0:
            left = 0.0
        if i == count - 1:
            right = 100.0
        columns.append(
            Column(
                x=xs[i],
                left=round(left, 3),
                width=round(right - left, 3),
                label=spoken,
                heading=heading,
                lines=lines,
                # Rings on the hovered points, where they are not the chart's only circles (a small
                # multiple's circles are its points, one per version).
                rings=[(y_of(value), s.index) for s, value in recorded if _finite(value)] if interactive else [],
                tip_x=-round(tip_width * xs[i] / 100),
                tip_y=round(tip_y),
                tip_width=tip_width,
                tip_height=tip_height,
                href=hrefs[i] if hrefs else "",
            )
        )

    return Chart(
        id=id,
        title=title,
        x_title=x_title,
        plot_top=PLOT_TOP,
        axis_y=axis_y,
        label_y=label_y,
        x_title_y=x_title_y,
        height=height,
        rotate=rotate,
        interactive=interactive,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        series=drawn,
        columns=columns,
        rules=rules,
        rows=rows,
        x_heading=x_heading,
        compact=compact,
    )


# --- the model page: metrics across versions ------------------------------------------------------


@dataclass(frozen=True)
class MetricChart:
    """One metric across the versions: its latest value (the cards) and, when any version recorded
    it, its own small chart."""

    metric: str
    label: str
    latest: float | None
    chart: Chart | None

    @property
    def recorded(self) -> bool:
        return self.chart is not None


@dataclass(frozen=True)
class VersionCharts:
    """The model page's charts: the recorded metrics overlaid (they share 0..1), and one small
    chart per recorded metric. Iterating gives every metric (recorded or not), as the cards read them."""

    overlay: Chart | None
    metrics: list[MetricChart] = field(default_factory=list)

    def __iter__(self):
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    @property
    def recorded(self) -> list[MetricChart]:
        return [metric for metric in self.metrics if metric.recorded]

    @property
    def unrecorded(self) -> list[MetricChart]:
        return [metric for metric in self.metrics if not metric.recorded]


def _version_marks(numbers: list[int], aliases: dict | None) -> tuple[dict[int, list[tuple[str, str]]], int | None]:
    index_of = {number: index for index, number in enumerate(numbers)}
    marks: dict[int, list[tuple[str, str]]] = {}
    current = len(numbers) - 1 if numbers else None
    if current is not None:
        marks[current] = [("current", "current")]
    for alias, number in sorted((aliases or {}).items(), key=lambda item: (str(item[1]), item[0])):
        if isinstance(number, int) and number in index_of:
            marks.setdefault(index_of[number], []).append((f"@{alias}", "alias"))
    return marks, current


def metric_charts(versions: Iterable, *, aliases: dict | None = None) -> VersionCharts:
    """The charts of ``versions`` (oldest first; the last is the current one), each alias of
    ``aliases`` (alias → version number) marked on the x axis. Metrics no version recorded are
    not drawn."""
    versions = list(versions)
    labels = [f"v{version.version_number}" for version in versions]
    marks, current = _version_marks([version.version_number for version in versions], aliases)
    recorded = []
    metrics = []
    for index, metric in enumerate(METRIC_FIELDS, start=1):
        values = [getattr(version, metric) for version in versions]
        label = METRIC_LABELS[metric]
        latest = values[-1] if values else None
        chart = None
        if any(value is not None for value in values):
            recorded.append((metric, label, values, index))
            chart = line_chart(
                id=f"chart-{metric}",
                title=f"{label} by version",
                x_title="Version",
                x_heading="Version",
                labels=labels,
                series=[(metric, label, values)],
                marks=marks,
                current=current,
                plot_height=110,
                unit=True,
                interactive=False,
                compact=True,
                indexes=[index],
            )
        metrics.append(MetricChart(metric, label, latest, chart))
    overlay = None
    if recorded:
        overlay = line_chart(
            id="chart-metrics",
            title="Metrics by version",
            x_title="Version (oldest to newest)",
            x_heading="Version",
            labels=labels,
            series=[(metric, label, values) for metric, label, values, _ in recorded],
            marks=marks,
            current=current,
            plot_height=220,
            unit=True,
            indexes=[index for *_, index in recorded],
        )
    return VersionCharts(overlay, metrics)


# --- the experiment page: a metric across its runs ------------------------------------------------


def run_metric_chart(latest: Sequence, key: str, *, href) -> Chart:
    """The latest value of metric ``key`` of each run (RunLatestMetric rows with their runs, in start
    order), labelled by run name; ``href(run)`` links each run's page."""
    labels = [row.run.name for row in latest]
    values = [row.metric_value for row in latest]
    return line_chart(
        id="chart-runs",
        title=f"{key} across runs",
        x_title="Run (in start order)",
        x_heading="Run",
        labels=labels,
        series=[(key, key, values)],
        hrefs=[href(row.run) for row in latest],
        plot_height=220,
    )
