"""One HTTP attempt of a delivery: a POST to the checked address, never following a redirect.

urllib3's connection pools take the address to connect to apart from the name the request is for:
the connection goes to ``Target.address`` (checked by ``webhooks.addresses``, no second lookup) while
the Host header, TLS's server name and the certificate check use the URL's host.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import urllib3
from django.conf import settings

from webhooks.addresses import Target

USER_AGENT = "ml-registry-webhooks/1"
KEPT_RESPONSE_BYTES = 300
DRAINED_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    status_code: int | None  # None: no answer (timeout, connection error)
    error: str  # "" on success

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def worth_retrying(self) -> bool:
        """429, a 5xx, a timeout or a connection error; any other answer is final."""
        if self.delivered:
            return False
        return self.status_code is None or self.status_code == 429 or self.status_code >= 500


# Connections are kept open per thread and target (checked address, port, host), so a receiver that
# gets many events pays one TCP (and TLS) handshake, not one per delivery. A target's address is the
# one checked for this attempt: a connection never outlives the check that chose its address.
KEPT_TARGETS = 32
_pools = threading.local()


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    pools: OrderedDict = getattr(_pools, "by_target", None)
    if pools is None:
        pools = _pools.by_target = OrderedDict()
    key = (target.scheme, target.address, target.port, target.host)
    pool = pools.get(key)
    if pool is not None:
        pools.move_to_end(key)
        return pool
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False, maxsize=1)
    pools[key] = pool
    while len(pools) > KEPT_TARGETS:
        pools.popitem(last=False)[1].close()
    return pool


def post(target: Target, *, body: bytes, headers: dict[str, str]) -> Outcome:
    pool = _pool(target)
    all_headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS),
        )
        try:
            excerpt = response.read(KEPT_RESPONSE_BYTES)
            # A short answer is read to its end, so its connection serves the next delivery; a long
            # one's connection is closed rather than read on.
            if len(response.read(DRAINED_RESPONSE_BYTES)) == DRAINED_RESPONSE_BYTES:
                response.close()
        finally:
            response.release_conn()
    except urllib3.exceptions.NewConnectionError as error:  # before TimeoutError: urllib3 derives it from that
        return Outcome(None, f"Connection failed: {_reason(error)}"[:500])
    except urllib3.exceptions.TimeoutError:
        return Outcome(None, f"No answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g} s.")
    except urllib3.exceptions.HTTPError as error:
        return Outcome(None, f"Connection failed: {_reason(error)}"[:500])
    except OSError as error:
        return Outcome(None, f"Connection failed: {error}"[:500])
    status = response.status
    if 200 <= status < 300:
        return Outcome(status, "")
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        return Outcome(status, f"Answered {status} (a redirect to {location[:200]!r}, not followed).")
    text = excerpt.decode("utf-8", "replace").strip()
    return Outcome(status, f"Answered {status}" + (f": {text}" if text else "."))


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    return str(reason)
