import django_filters

from experiments.models import Experiment
from registry.filters import FilterSet, filter_by_owner, filter_by_words


class ExperimentFilterSet(FilterSet):
    tag = django_filters.CharFilter(method="filter_tag", label="Tag", help_text="Experiments carrying this tag.")
    search = django_filters.CharFilter(
        method=filter_by_words, label="Search", help_text="Words in the name or description."
    )
    owner = django_filters.CharFilter(method=filter_by_owner, label="Owner", help_text="Owner's id or username.")
    ordering = django_filters.OrderingFilter(fields=("name", "created_at", "updated_at"))

    class Meta:
        model = Experiment
        fields: list[str] = []

    def filter_tag(self, queryset, name, value):
        return queryset.tagged(value.strip())
