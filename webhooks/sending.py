"""One HTTP attempt of a delivery: a POST to the checked address, never following a redirect.

urllib3's connection pools take the address to connect to apart from the name the request is for:
the connection goes to ``Target.address`` (checked by ``webhooks.addresses``, no second lookup) while
the Host header, TLS's server name and the certificate check use the URL's host.
"""

from __future__ import annotations

from dataclasses import dataclass

import urllib3
from django.conf import settings

from webhooks.addresses import Target

USER_AGENT = "ml-registry-webhooks/1"
KEPT_RESPONSE_BYTES = 300


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


def post(target: Target, *, body: bytes, headers: dict[str, str]) -> Outcome:
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
    all_headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        with pool:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=all_headers,
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                excerpt = response.read(KEPT_RESPONSE_BYTES)
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
