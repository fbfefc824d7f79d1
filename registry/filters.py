"""The apps' FilterSet base, and filter methods they share (usable as ``CharFilter(method=...)``)."""

import copy

import django_filters
from django import forms
from django.db.models import Q
from django_filters.widgets import BaseCSVWidget

from registry.validators import MAX_DATABASE_ID


class _CopiedShallow(dict):
    """A mapping whose deep copy is a plain dict of shallow copies of its values."""

    def __deepcopy__(self, memo):
        return {name: _shallow_copy(value) for name, value in self.items()}


def _shallow_copy(value):
    copied = copy.copy(value)
    if isinstance(value, django_filters.Filter) and value.method is not None:
        # A filter with a ``method`` filters through an object bound to the filter itself.
        copied.method = value.method
    return copied


class FilterSet(django_filters.FilterSet):
    """A FilterSet that builds its form class once per class, and copies its filters and form
    fields shallowly for each request.

    django-filter makes a new form class (one form field per filter, labels worked out from the
    model) on every request: a tenth of the time of a list request. The filters here take nothing
    from the request to build their fields, so the class can be shared. Then the filter set
    deep-copies every filter and the form every field (their widgets, validators, choices and
    messages) for each request: another tenth. A request only sets a filter's ``model`` and
    ``parent`` and validates with the fields (these forms are never rendered), so a shallow copy
    keeps requests apart.
    """

    @classmethod
    def get_filters(cls):
        return _CopiedShallow(super().get_filters())

    def get_form_class(self):
        cls = type(self)
        form_class = cls.__dict__.get("_cached_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            form_class.base_fields = _CopiedShallow(form_class.base_fields)
            cls._cached_form_class = form_class
        return form_class


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
