from django import template
from django.template.defaulttags import querystring
from django.urls import reverse
from django.utils.html import format_html

from mlmodels.selectors import aliases_of_version

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context, field: str, label: str, ordering: str):
    """A column header that sorts the model list by ``field`` (again: the other way round),
    keeping the current filters; a real link, enhanced by htmx to swap only the results."""
    descending = ordering == field
    target = f"-{field}" if descending else field
    url = reverse("model-list") + querystring(context, ordering=target, page=None)
    if ordering == field:
        state, arrow = "ascending", " ▲"
    elif ordering == f"-{field}":
        state, arrow = "descending", " ▼"
    else:
        state, arrow = "none", ""
    return format_html(
        '<th scope="col" aria-sort="{}"><a href="{}" hx-get="{}" hx-target="#results" hx-push-url="true">{}{}</a></th>',
        state,
        url,
        url,
        label,
        arrow,
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
