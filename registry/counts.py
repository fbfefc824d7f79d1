"""Row counts of list queries, cached until the registry's data changes.

A page of a list says how many rows match (the API's ``count``). Counting a filtered query over a
million models costs tens of milliseconds, more than the rest of the request; the answer only
changes when rows are written. So counts are cached under a *generation* that every committed write
to the registry's tables moves on (``connect_signals``, called by the mlmodels app), which makes every
earlier count unreachable at once: never a stale count, however the write was made through the ORM.

The generation moves on once a write commits (once per transaction, however many rows it writes),
so a count computed from the snapshot before the commit is stored under a generation no later read
uses. Until then only the writing connection sees the write, and it counts afresh. It is shared through
the cache, so caching is on only with a cache all server processes share (Redis); with the
in-process cache of the embedded defaults each process would see only its own writes. Writes that
bypass the ORM's signals (raw SQL, ``QuerySet.update``; the app makes none) show in counts after
COUNT_SECONDS at the latest.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connections, transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.utils.functional import cached_property

GENERATION_KEY = "counts:generation"
COUNT_SECONDS = 600


def counts_cached() -> bool:
    return settings.CACHE_COUNTS


# Writes to these apps' tables may change what a list counts (a user's rename changes the owner
# filter, a version's metrics the model's); sessions, tokens and the like do not.
COUNTED_APPS = frozenset({"accounts", "experiments", "mlmodels"})


def connect_signals() -> None:
    post_save.connect(data_changed, dispatch_uid="registry.counts.saved")
    post_delete.connect(data_changed, dispatch_uid="registry.counts.deleted")


def data_changed(sender, using=None, **kwargs) -> None:
    """A row was written (a signal receiver): move the generation on once the write commits (at
    once outside a transaction). One Redis write per transaction: recording a version writes two
    rows, and a Redis call costs a fifth of a millisecond."""
    if sender._meta.app_label in COUNTED_APPS and counts_cached() and not _write_pending(using):
        transaction.on_commit(_next_generation, using=using, robust=True)


def _write_pending(using) -> bool:
    """Whether the connection's open transaction has written counted rows, not yet committed."""
    connection = transaction.get_connection(using)
    return any(callback is _next_generation for _, callback, _ in connection.run_on_commit)


def _next_generation() -> None:
    cache.set(GENERATION_KEY, time.time_ns(), timeout=None)


def cached_count(queryset: QuerySet) -> int:
    # A transaction that has written counts what it sees: its writes are its own until the commit.
    if not counts_cached() or _write_pending(queryset.db):
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
