from functools import partial

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from registry.counts import CachedCountPaginator

MAX_PAGE_SIZE = 100


class StrictPageNumberPagination(PageNumberPagination):
    """Page-number pagination that refuses a bad ``page_size`` instead of silently ignoring it."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    django_paginator_class = CachedCountPaginator

    def paginate_queryset(self, queryset, request, view=None):
        # A view may plan its page query from the count (``page_plan(queryset, count)``); the
        # paginator counts once for both.
        plan = getattr(view, "page_plan", None)
        self.django_paginator_class = partial(CachedCountPaginator, plan=plan)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"Must be a whole number from 1 to {self.max_page_size}; got {raw!r}."]}
            )
        return size
