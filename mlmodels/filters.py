"""The model list's filters, search and ordering: one FilterSet for the API and the dashboard."""

import django_filters

from mlmodels.models import Framework, MLModel, Stage, TaskType
from registry.filters import ChoicesWidget, FilterSet, IdFilter, filter_by_owner, filter_by_words

ORDERING_FIELDS = ("name", "created_at", "updated_at", "accuracy", "precision", "recall", "f1_score")


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """Several comma-separated choices (``?lifecycle=staging,production``), each one checked; a
    multiple select in the browsable API's filter form."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", ChoicesWidget)
        super().__init__(*args, **kwargs)


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
