"""Filter methods shared by the apps' FilterSets (usable as ``CharFilter(method=...)``)."""

from django.db.models import Q


def filter_by_owner(queryset, name, value):
    """``owner=<id>`` or ``owner=<username>``."""
    value = value.strip()
    if value.isdigit():
        return queryset.filter(owner_id=int(value))
    return queryset.filter(owner__username=value)


def filter_by_words(queryset, name, value):
    """Every word must appear in the name or the description (any letter case)."""
    for word in value.split():
        queryset = queryset.filter(Q(name__icontains=word) | Q(description__icontains=word))
    return queryset
