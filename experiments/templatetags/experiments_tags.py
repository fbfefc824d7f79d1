import math
from datetime import UTC, datetime

from django import template
from django.template.defaulttags import querystring
from django.urls import reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def run_sort_header(context, term: str, label: str, sort: str):
    """A column header of the runs table that sorts it by ``term`` (again: the other way round); a
    real link, enhanced by htmx to swap only the table and keep the address in step."""
    target = f"-{term}" if sort == term else term
    url = reverse("experiment-detail", args=[context["experiment"].pk]) + querystring(context, sort=target, page=None)
    if sort == term:
        state, arrow = "ascending", " ▲"
    elif sort == f"-{term}":
        state, arrow = "descending", " ▼"
    else:
        state, arrow = "none", ""
    return format_html(
        '<th scope="col" aria-sort="{}"><a href="{}" hx-get="{}" hx-target="#runs" hx-push-url="true">{}{}</a></th>',
        state,
        url,
        url,
        label,
        arrow,
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
