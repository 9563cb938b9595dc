"""The failure alert: one JSON POST to the webhook URL the tenants file names.

The body carries what an on-call person needs first (tenant, job, run, the error's message) and
nothing secret: no key, no URL with credentials. Slack-style incoming webhooks accept it as it is
(``text`` holds the one-line summary).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def payload(
    *, run_id: str, job: str, tenant: str | None, message: str, url: str | None = None
) -> dict[str, Any]:
    """The JSON body of an alert."""
    who = f"tenant {tenant}" if tenant else "no tenant"
    return {
        "text": f"Clinical Conductor run failed: {job}, {who}: {message.splitlines()[0][:300]}",
        "run_id": run_id,
        "job": job,
        "tenant": tenant,
        "message": message[:4000],
        "run_url": url,
    }


def post(url: str, body: dict[str, Any], *, timeout: float = 10) -> int:
    """POST ``body`` as JSON; returns the HTTP status.

    Raises on a refused or failing webhook, naming the host only (a webhook URL's path is often its
    secret).
    """
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    host = urllib.request.urlparse(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"the failure webhook at {host} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(f"the failure webhook at {host} is unreachable: {reason}") from None
