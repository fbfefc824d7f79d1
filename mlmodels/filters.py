"""The model list's filters, search and ordering: one FilterSet for the API and the dashboard."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema_field

from mlmodels.models import Framework, MLModel, Stage, TaskType
from registry.filters import ChoicesWidget, FilterSet, IdFilter, filter_by_owner, filter_by_words

ORDERING_FIELDS = ("name", "created_at", "updated_at", "accuracy", "precision", "recall", "f1_score")


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """Several comma-separated choices (``?lifecycle=staging,production``), each one checked; a
    multiple select in the browsable API's filter form."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", ChoicesWidget)
        super().__init__(*args, **kwargs)


class RepeatedValuesInput(forms.TextInput):
    """Every value of a repeated query parameter (``?tag=a&tag=b``); the page's input shows the first."""

    def value_from_datadict(self, data, files, name):
        return data.getlist(name) if hasattr(data, "getlist") else [data[name]] if name in data else []

    def format_value(self, value):
        return super().format_value(value[0] if isinstance(value, list | tuple) and value else value or None)


class TagsField(forms.Field):
    widget = RepeatedValuesInput

    def to_python(self, value) -> list[tuple[str, str | None]]:
        tags = []
        for item in value if isinstance(value, list | tuple) else [value]:
            if not item or not str(item).strip():
                continue
            if "\x00" in str(item):
                # No tag holds one (PostgreSQL's JSON cannot), and PostgreSQL refuses it in a query.
                raise ValidationError("A tag filter cannot contain a NUL character.", code="invalid_tag")
            key, separator, tag_value = str(item).partition(":")
            if not key.strip():
                raise ValidationError("A tag filter is key or key:value, e.g. team:payments.", code="invalid_tag")
            tags.append((key.strip(), tag_value if separator else None))
        return tags


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagFilter(django_filters.Filter):
    """``?tag=key:value`` (that value) or ``?tag=key`` (any value), repeatable: all must match."""

    field_class = TagsField

    def filter(self, qs, value):
        for key, tag_value in value or []:
            qs = qs.tagged(key, tag_value)
        return qs


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ordering that ends on the id, so pages never repeat or skip rows that tie on the sort key."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        if value:
            descending = value[-1].startswith("-")
            qs = qs.order_by(*qs.query.order_by, "-id" if descending else "id")
        return qs


class MLModelFilterSet(FilterSet):
    framework = ChoiceInFilter(choices=Framework.choices, label="Framework", help_text="One or more, comma-separated.")
    task_type = ChoiceInFilter(choices=TaskType.choices, label="Task type", help_text="One or more, comma-separated.")
    lifecycle = ChoiceInFilter(choices=Stage.choices, label="Lifecycle", help_text="One or more, comma-separated.")
    owner = django_filters.CharFilter(method=filter_by_owner, label="Owner", help_text="Owner's id or username.")
    experiment = IdFilter(field_name="experiment_id", label="Experiment", help_text="Experiment id.")
    alias = django_filters.CharFilter(
        field_name="aliases", lookup_expr="has_key", label="Alias", help_text="Models with this alias."
    )
    tag = TagFilter(label="Tag", help_text="key:value, or key for any value; repeat for several (all must match).")
    search = django_filters.CharFilter(
        method=filter_by_words, label="Search", help_text="Words in the name or description."
    )
    min_accuracy = django_filters.NumberFilter(field_name="accuracy", lookup_expr="gte")
    max_accuracy = django_filters.NumberFilter(field_name="accuracy", lookup_expr="lte")
    min_precision = django_filters.NumberFilter(field_name="precision", lookup_expr="gte")
    max_precision = django_filters.NumberFilter(field_name="precision", lookup_expr="lte")
    min_recall = django_filters.NumberFilter(field_name="recall", lookup_expr="gte")
    max_recall = django_filters.NumberFilter(field_name="recall", lookup_expr="lte")
    min_f1 = django_filters.NumberFilter(field_name="f1_score", lookup_expr="gte")
    max_f1 = django_filters.NumberFilter(field_name="f1_score", lookup_expr="lte")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    ordering = StableOrderingFilter(
        fields=ORDERING_FIELDS, help_text="A field to sort by, with '-' for descending: " + ", ".join(ORDERING_FIELDS)
    )

    class Meta:
        model = MLModel
        fields: list[str] = []
