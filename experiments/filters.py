import django_filters
from django.db.models import Q

from experiments.models import Experiment


class ExperimentFilterSet(django_filters.FilterSet):
    tag = django_filters.CharFilter(method="filter_tag", help_text="Experiments carrying this tag.")
    search = django_filters.CharFilter(method="filter_search", help_text="Words in the name or description.")
    owner = django_filters.CharFilter(method="filter_owner", help_text="Owner's id or username.")
    ordering = django_filters.OrderingFilter(fields=("name", "created_at", "updated_at"))

    class Meta:
        model = Experiment
        fields: list[str] = []

    def filter_tag(self, queryset, name, value):
        return queryset.tagged(value.strip())

    def filter_search(self, queryset, name, value):
        for word in value.split():
            queryset = queryset.filter(Q(name__icontains=word) | Q(description__icontains=word))
        return queryset

    def filter_owner(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(owner_id=int(value)) if value.isdigit() else queryset.filter(owner__username=value)
