"""Row counts of list queries, cached until the registry's data changes.

A page of a list says how many rows match (the API's ``count``). Counting a filtered query over a
large table costs more than the rest of the request, and the answer only changes when rows are
written. So counts are cached under a *generation* that every domain event moves on
(``next_generation``, subscribed to the bus in ``RegistryConfig.ready``): every service that changes
what a list counts publishes an event once its write commits, and moving the generation makes every
earlier count unreachable at once.

Never a stale count after a service's write: the generation is read before the count is taken, so a
count from a snapshot before a commit is stored under a generation older than the one that commit's
event sets, and no later read uses it. A count taken inside a transaction is neither read from the
cache nor stored in it: the transaction may have written rows only it sees, whose events wait for
its commit. Requests run in autocommit (ATOMIC_REQUESTS is off), so lists always use the cache.

The generation is shared through the cache, so caching is on only with a cache all server processes
share (Redis); with the in-process cache of the embedded defaults each process would see only its
own writes. Writes that publish no event show in counts after COUNT_SECONDS at the latest: raw SQL
and ``QuerySet.update`` (the app makes none), and the user admin's, which goes through Django's user
pages rather than a service (deleting a user cascades to their models and experiments; renaming one
changes what ``owner=<username>`` matches).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils.functional import cached_property

from registry.events import Event, subscribe

GENERATION_KEY = "counts:generation"
COUNT_SECONDS = 600


def counts_cached() -> bool:
    return settings.CACHE_COUNTS


def next_generation(event: Event | None = None) -> None:
    """Make every cached count unreachable (a subscriber of every event, delivered after its commit)."""
    if counts_cached():
        cache.set(GENERATION_KEY, time.time_ns(), timeout=None)


def connect() -> None:
    subscribe(next_generation)


def cached_count(queryset: QuerySet) -> int:
    # Inside a transaction, count what it sees: its own writes are not yet in any generation.
    if not counts_cached() or not transaction.get_autocommit(using=queryset.db):
        return queryset.count()
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        generation = time.time_ns()
        if not cache.add(GENERATION_KEY, generation, timeout=None):
            generation = cache.get(GENERATION_KEY, generation)
    sql, params = queryset.query.sql_with_params()
    # The database's own address, not just its alias: two registries (or a benchmark's databases)
    # may share one Redis.
    database = connections[queryset.db].settings_dict
    where = (database["HOST"], database["PORT"], database["NAME"])
    digest = hashlib.sha256(repr((where, sql, params)).encode()).hexdigest()
    key = f"counts:{generation}:{digest}"
    count = cache.get(key)
    if count is None:
        count = queryset.count()
        cache.set(key, count, timeout=COUNT_SECONDS)
    return count


class CachedCountPaginator(Paginator):
    """Django's paginator with the count from ``cached_count``.

    ``plan(queryset, count)``, when given, may rewrite the queryset once its count is known (a
    query plan that depends on how many rows match), before the page is sliced from it.
    """

    def __init__(self, object_list, per_page, *args, plan=None, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.plan = plan

    def page(self, number):
        number = self.validate_number(number)
        if self.plan is not None:
            self.object_list, self.plan = self.plan(self.object_list, self.count), None
        return super().page(number)

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return cached_count(self.object_list)
        return len(self.object_list)
