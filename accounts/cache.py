"""The ``throttle`` cache without Redis: Django's database cache, counting correctly."""

from django.core.cache.backends.db import DatabaseCache
from django.db import router, transaction
from django.utils import timezone

from accounts.models import ThrottleCacheEntry


class CounterDatabaseCache(DatabaseCache):
    """Django's database cache (its table is ``ThrottleCacheEntry``) with an ``incr`` that counts every
    call of concurrent processes and keeps the entry's expiry.

    The base class reads the value and writes it back in two statements, so two processes counting
    at once could both write n + 1 (8 threads made 105 of 120 increments), and its write resets the
    expiry to the default timeout. Here the row is held (SELECT … FOR UPDATE where the database has
    it; SQLite's transactions take the write lock as they begin, see DATABASES) from the read to the
    write, which goes through the cache's own ``set`` with the time the entry had left.
    """

    def incr(self, key, delta=1, version=None):
        db = router.db_for_write(ThrottleCacheEntry)
        now = timezone.now()
        with transaction.atomic(using=db):
            entry = (
                ThrottleCacheEntry.objects.using(db)
                .select_for_update()
                .filter(cache_key=self.make_and_validate_key(key, version=version), expires__gt=now)
                .only("expires")
                .first()
            )
            value = None if entry is None else self.get(key, version=version)
            if value is None:
                raise ValueError(f"Key '{key}' not found")
            self.set(key, value + delta, timeout=(entry.expires - now).total_seconds(), version=version)
        return value + delta
