from django.core.cache import caches
from django.utils.connection import ConnectionProxy
from rest_framework import throttling


def client_address(request) -> str:
    """The client's address as every per-address limit reads it: the peer's, or the address the outermost
    of ``NUM_PROXIES`` trusted proxies saw (never what a client writes into X-Forwarded-For itself).

    DRF's rule, for Django's requests as well (django-axes reads it through AXES_CLIENT_IP_CALLABLE).
    """
    return throttling.BaseThrottle().get_ident(request)


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
