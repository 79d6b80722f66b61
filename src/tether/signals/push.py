"""One push delivery attempt (RFC 8935) and what its answer means.

The SET is POSTed as ``application/secevent+jwt`` with ``Accept: application/json``
(and ``Authorization: Bearer`` when the receiver has a token). The receiver's answer:

* ``202 Accepted`` (any 2xx): delivered.
* ``400`` with ``{"err", "description"}`` (RFC 8935 §2.3): the receiver refused this
  SET; sending it again cannot help, so the delivery fails permanently, the error kept.
* ``401``, ``403`` and other 4xx: the receiver refuses tether itself (a wrong token, a
  wrong URL); also permanent, until an administrator fixes the receiver.
* a network error, a timeout, ``408``, ``429`` or 5xx: transient; retried with backoff.
* a redirect is not followed (a SET goes only where it was configured to go): permanent.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tether.signals.set_token import SET_MEDIA_TYPE

_RETRY_STATUSES = frozenset({408, 425, 429})
_MAX_ERROR = 500


@dataclass(frozen=True)
class PushOutcome:
    delivered: bool
    permanent: bool
    error: str | None = None
    status: int | None = None


def push_set(client: httpx.Client, url: str, token: str | None, set_jwt: str) -> PushOutcome:
    """POST one SET to a push receiver; never raises for what the network or peer does."""
    headers = {"content-type": SET_MEDIA_TYPE, "accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        response = client.post(url, content=set_jwt.encode("ascii"), headers=headers)
    except httpx.HTTPError as exc:
        return PushOutcome(False, False, f"network: {type(exc).__name__}: {exc}"[:_MAX_ERROR])
    status = response.status_code
    if 200 <= status < 300:
        return PushOutcome(True, False, None, status)
    if status >= 500 or status in _RETRY_STATUSES:
        return PushOutcome(False, False, f"http {status}", status)
    return PushOutcome(False, True, _refusal(response), status)


def _refusal(response: httpx.Response) -> str:
    """``http 400 invalid_key: <description>`` from an RFC 8935 §2.3 error body."""
    text = f"http {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return text
    if isinstance(body, dict):
        err, description = body.get("err"), body.get("description")
        if isinstance(err, str):
            text += f" {err}"
        if isinstance(description, str):
            text += f": {description}"
    return text[:_MAX_ERROR]
