from django import template
from django.template.defaulttags import querystring
from django.urls import reverse

from mlmodels.comparison import MetricCell
from mlmodels.models import METRIC_FIELDS
from mlmodels.selectors import aliases_of_version
from registry import pages

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context, field: str, label: str, ordering: str):
    """A column header that sorts the model list by ``field``, keeping the current filters."""
    return pages.sort_header(
        url_for=lambda order: reverse("model-list") + querystring(context, ordering=order, page=None),
        term=field,
        label=label,
        current=ordering,
        target="results",
    )


@register.filter
def field_label(name: str) -> str:
    return {"f1_score": "F1 score", "file": "File", "file_size": "File size", "file_sha256": "SHA-256"}.get(
        name, name.replace("_", " ").capitalize()
    )


@register.filter
def basename(key: str) -> str:
    return key.rsplit("/", 1)[-1] if key else ""


@register.filter
def aliases_for(aliases: dict, number: int) -> list[str]:
    """The model's aliases that point at its version ``number``."""
    return aliases_of_version(aliases or {}, number)


@register.filter
def version_metrics(version) -> list[MetricCell]:
    """A version's accuracy, precision, recall and F1, in the versions table's column order, each
    with its change from the version before when the view worked it out (``metric_cells``)."""
    cells = getattr(version, "metric_cells", None)
    return cells if cells is not None else [MetricCell(getattr(version, field)) for field in METRIC_FIELDS]


@register.filter
def sorted_items(mapping: dict | None) -> list[tuple]:
    """A mapping's items by key: the same order on every database (PostgreSQL's jsonb keeps none)."""
    return sorted((mapping or {}).items())
