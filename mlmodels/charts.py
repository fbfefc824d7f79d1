"""Metric charts drawn on the server as SVG: no chart library, nothing to load, readable without JS."""

from __future__ import annotations

from dataclasses import dataclass

from mlmodels.models import METRIC_FIELDS

WIDTH, HEIGHT, PAD = 320, 120, 14


@dataclass(frozen=True)
class MetricChart:
    metric: str
    label: str
    points: str  # SVG polyline points
    dots: list[tuple[float, float, int, float]]  # x, y, version number, value
    latest: float | None
    low: float  # the value at the bottom of the chart
    high: float  # the value at the top


def _value_range(values: list[float]) -> tuple[float, float]:
    """A y range around the values (metrics move in small steps: a fixed 0..1 would flatten them),
    at least 0.1 tall and kept within 0..1."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = max((high - low) * 0.15, 0.05)
    low, high = max(0.0, low - margin), min(1.0, high + margin)
    return round(low, 2), round(high, 2) if high > low else round(low + 0.1, 2)


def metric_charts(versions) -> list[MetricChart]:
    """One chart per metric over ``versions`` (oldest first)."""
    versions = list(versions)
    charts = []
    step = (WIDTH - 2 * PAD) / max(len(versions) - 1, 1)
    for metric in METRIC_FIELDS:
        recorded = [(index, v) for index, v in enumerate(versions) if getattr(v, metric) is not None]
        low, high = _value_range([getattr(v, metric) for _, v in recorded])
        span = (high - low) or 1.0
        dots = []
        for index, version in recorded:
            value = getattr(version, metric)
            x = PAD + index * step if len(versions) > 1 else WIDTH / 2
            y = HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD)
            dots.append((round(x, 1), round(y, 1), version.version_number, value))
        charts.append(
            MetricChart(
                metric=metric,
                label="F1 score" if metric == "f1_score" else metric.capitalize(),
                points=" ".join(f"{x},{y}" for x, y, _, _ in dots),
                dots=dots,
                latest=dots[-1][3] if dots else None,
                low=low,
                high=high,
            )
        )
    return charts
