import math
from datetime import UTC, datetime

from django import template
from django.template.defaulttags import querystring
from django.urls import reverse

from registry import pages

register = template.Library()


@register.simple_tag(takes_context=True)
def run_sort_header(context, term: str, label: str, sort: str):
    """A column header of the runs table that sorts it by ``term``."""
    experiment = context["experiment"].pk
    return pages.sort_header(
        url_for=lambda order: (
            reverse("experiment-detail", args=[experiment]) + querystring(context, sort=order, page=None)
        ),
        term=term,
        label=label,
        current=sort,
        target="runs",
    )


@register.simple_tag(takes_context=True)
def model_sort_header(context, term: str, label: str, sort: str):
    """A column header of the experiment's models table that sorts it by ``term``."""
    experiment = context["experiment"].pk
    return pages.sort_header(
        url_for=lambda order: reverse("experiment-detail", args=[experiment]) + querystring(context, models_sort=order),
        term=term,
        label=label,
        current=sort,
        target="experiment-models",
    )


@register.filter
def epoch_ms(value: int | None) -> datetime | None:
    """Epoch milliseconds as a datetime (UTC), for the ``date`` filter."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@register.filter
def duration_ms(value: int | None) -> str:
    if value is None or value < 0:
        return "—"
    seconds = value / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


@register.filter
def metric(point) -> str:
    """A metric point's value for reading: NaN, ±∞ or the number (at most 6 significant digits)."""
    if point is None:
        return "—"
    if point.is_nan:
        return "NaN"
    if math.isinf(point.value):
        return "∞" if point.value > 0 else "-∞"
    return f"{point.value:.6g}"
