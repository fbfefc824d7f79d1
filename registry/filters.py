"""The apps' FilterSet base, and filter methods they share (usable as ``CharFilter(method=...)``)."""

import functools

import django_filters
from django import forms
from django.db.models import Q
from django.utils import translation
from django_filters.widgets import BaseCSVWidget

from registry.validators import MAX_DATABASE_ID

# The filters whose form field is built from the filter's own arguments and its model alone: from
# nothing of the filter set (its request, its data) and nothing read from the database. A filter of
# another kind (a ModelChoiceFilter whose queryset is made from the request, an AllValuesFilter
# reading its choices from the table, a subclass building its own field) needs a form class of its
# filter set's own.
STATIC_FIELDS = (django_filters.Filter.field, django_filters.NumberFilter.field)


class FilterSet(django_filters.FilterSet):
    """A FilterSet that builds its form class once (per language, for the labels) when every
    filter's form field is one of STATIC_FIELDS.

    django-filter builds the form class (a form field per filter, labels worked out from the model)
    for each filter set, so for each list request, in ``get_form_class``: the method it names for
    overriding. Made of static fields, the class is the same for every request. Each form still
    deep-copies the class's fields for itself (Django's forms copy ``base_fields``), and each filter
    set has its own deep copies of the filters (django-filter's): nothing of one request reaches
    another.
    """

    def get_form_class(self):
        cls = type(self)
        if not shares_form_class(cls):
            return super().get_form_class()
        key = (cls, translation.get_language())
        form_class = _FORM_CLASSES.get(key)
        if form_class is None:
            form_class = _FORM_CLASSES[key] = super().get_form_class()
        return form_class


_FORM_CLASSES: dict[tuple[type[FilterSet], str | None], type[forms.Form]] = {}


@functools.cache
def shares_form_class(filterset_class: type[FilterSet]) -> bool:
    """Whether every filter of ``filterset_class`` builds its form field from itself alone."""
    return all(type(filter_).field in STATIC_FIELDS for filter_ in filterset_class.base_filters.values())


class ChoicesWidget(BaseCSVWidget, forms.SelectMultiple):
    """A multiple select for several choices, read from ``?framework=sklearn,xgboost`` (the API's
    comma-separated form) and from ``?framework=sklearn&framework=xgboost`` (what the select sends)."""

    def value_from_datadict(self, data, files, name):
        values = forms.SelectMultiple.value_from_datadict(self, data, files, name)
        if isinstance(values, str):
            values = [values]
        return [part for value in values or () for part in value.split(",") if part]

    def render(self, name, value, attrs=None, renderer=None):
        return forms.SelectMultiple.render(self, name, value, attrs, renderer)


class IdFilter(django_filters.Filter):
    """A row id: a whole number a database column can hold (a larger one is a 400, not an overflow)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_DATABASE_ID)
        super().__init__(*args, **kwargs)


def filter_by_owner(queryset, name, value):
    """``owner=<id>`` or ``owner=<username>`` (digits too large for an id can only be a username)."""
    value = value.strip()
    if value.isdigit() and int(value) <= MAX_DATABASE_ID:
        return queryset.filter(owner_id=int(value))
    return queryset.filter(owner__username=value)


def filter_by_words(queryset, name, value):
    """Every word must appear in the name or the description (any letter case)."""
    for word in value.split():
        queryset = queryset.filter(Q(name__icontains=word) | Q(description__icontains=word))
    return queryset
