import base64
import pickle

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.connection import ConnectionProxy
from rest_framework import throttling


def client_address(request) -> str:
    """The client's address as every per-address limit reads it: the peer's, or the address the outermost
    of ``NUM_PROXIES`` trusted proxies saw (never what a client writes into X-Forwarded-For itself).

    DRF's rule, for Django's requests as well (django-axes reads it through AXES_CLIENT_IP_CALLABLE).
    """
    return throttling.BaseThrottle().get_ident(request)


class CounterDatabaseCache(DatabaseCache):
    """Django's database cache with an atomic ``incr`` that keeps the entry's expiry.

    The base class reads the value and writes it back in two statements, so two processes counting at
    once could both write n + 1, and its write resets the expiry to the default timeout. Here the read
    and the write happen in one transaction holding the row (SELECT ... FOR UPDATE where the database
    has it; SQLite's transactions take the write lock as they begin, see DATABASES).
    """

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote_name = connection.ops.quote_name
        table, cache_key, value, expires = (quote_name(name) for name in (self._table, "cache_key", "value", "expires"))
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        # Only the quoted table and column names of this cache are interpolated; values are parameters.
        select = f"SELECT {value} FROM {table} WHERE {cache_key} = %s AND {expires} > %s{lock}"  # noqa: S608
        update = f"UPDATE {table} SET {value} = %s WHERE {cache_key} = %s"  # noqa: S608
        now = timezone.now().replace(microsecond=0, tzinfo=None)
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(select, [key, connection.ops.adapt_datetimefield_value(now)])
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            # The cache's own pickles (Django's DatabaseCache format), never a client's data.
            count = pickle.loads(base64.b64decode(connection.ops.process_clob(row[0]).encode())) + delta  # noqa: S301
            encoded = base64.b64encode(pickle.dumps(count, self.pickle_protocol)).decode("latin1")
            cursor.execute(update, [encoded, key])
        return count


class FixedWindowRateThrottle(throttling.SimpleRateThrottle):
    """DRF's rate throttle, counted per fixed window with one atomic increment per request.

    DRF's own throttle keeps the timestamps of every request of the last period in one cache entry
    and reads, trims and rewrites the whole list on each request: at the default 6,000 requests a
    minute, a busy pipeline's every request unpickled and re-sent a list of up to 6,000 floats. A
    counter per window is one INCR. The price: across a window boundary a client can get up to
    twice the rate in one period's time, which is fine for a limit that stops runaway clients and
    password guessing. When the cache is down the counter cannot be read and the request is let
    through (see README: Redis outages).
    """

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends_at = (window + 1) * self.duration
        key = f"{self.key}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first request
            count = 1 if self.cache.add(key, 1, timeout=self.duration + 1) else self.cache.incr(key)
        return count is None or count <= self.num_requests

    def wait(self):
        return max(0.0, self.window_ends_at - self.now)


class UserRateThrottle(FixedWindowRateThrottle, throttling.UserRateThrottle):
    """The ``user`` rate, per signed-in user (per client address for anonymous requests)."""


class AuthRateThrottle(FixedWindowRateThrottle):
    """The tight ``auth`` rate for login and registration, counted per client address.

    Its counters live in the ``throttle`` cache (settings.CACHES): Redis, or the database without it,
    so that every server process counts against the same budget.
    """

    scope = "auth"
    cache = ConnectionProxy(caches, "throttle")

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
