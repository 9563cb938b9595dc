"""The admin API under ``/_sandbox/``: truth, counters, clock, mutations, settings.

No API key, no rate limit, no faults, not counted: tests and benchmarks use it to steer and
observe the tenant while a client under test talks to the CC endpoints.
"""

from __future__ import annotations

import json
from typing import Any

from cc_sandbox import endpoints as ep
from cc_sandbox.app import App
from cc_sandbox.timefmt import format_utc

_MUTATION_KEYS = {
    "n", "ids", "same_timestamp", "backdate_seconds", "under", "parent_ids", "kind",
}


def handle(app: App, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Answer one admin request.

    Args:
        app: The sandbox.
        method: HTTP method.
        path: Path starting at ``/_sandbox``.
        body: Request body (JSON for POSTs, may be empty).

    Returns:
        Status and a JSON-serialisable payload.
    """
    parts = [p for p in path.split("/") if p][1:]
    try:
        payload = json.loads(body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        return _route(app, method, parts, payload)
    except (ValueError, KeyError, TypeError) as exc:
        return 400, {"Message": str(exc)}


def _route(app: App, method: str, parts: list[str], body: dict[str, Any]) -> tuple[int, Any]:
    tenant = app.tenant
    if method == "GET" and parts == ["health"]:
        return 200, {
            "status": "ok",
            "profile": tenant.profile,
            "scale": tenant.scale,
            "seed": tenant.seed,
            "clock": format_utc(tenant.clock, 0),
            "filter_datetime_format": app.datetime_form,
        }
    if method == "GET" and len(parts) == 2 and parts[0] == "truth":
        if parts[1] not in ep.BY_NAME:
            return 404, {"Message": f"unknown endpoint {parts[1]!r}"}
        return 200, tenant.truth(parts[1])
    if method == "GET" and parts == ["endpoints"]:
        return 200, [
            {"name": e.name, "path": e.path, "odata": e.odata, "shape": e.shape,
             "status": e.status, "rows": len(tenant.table(e.name).rows) if e.status == 200 else 0}
            for e in ep.ENDPOINTS
        ]
    if method == "GET" and parts == ["stats"]:
        return 200, app.stats.snapshot()
    if method == "POST" and parts == ["stats", "reset"]:
        app.stats.reset()
        return 200, app.stats.snapshot()
    if method == "POST" and parts == ["clock", "advance"]:
        clock = tenant.advance_clock(float(body.get("seconds", 0)))
        return 200, {"clock": format_utc(clock, 0)}
    if method == "POST" and parts == ["mutate"]:
        kwargs = {k: v for k, v in body.items() if k in _MUTATION_KEYS}
        ids = tenant.mutate(body["action"], body["endpoint"], **kwargs)
        return 200, {"ids": ids, "clock": format_utc(tenant.clock, 0)}
    if method == "POST" and parts == ["schedule"]:
        kwargs = {k: v for k, v in body.items() if k in _MUTATION_KEYS}
        at = app.schedule(int(body["after_requests"]), body["action"], body["endpoint"], **kwargs)
        return 200, {"scheduled": True, "at_request": at}
    if method == "GET" and parts == ["schedule"]:
        return 200, {"executed": list(app.executed)}
    if parts == ["config"]:
        if method == "POST":
            app.configure(**body)
        return 200, app.config.public()
    return 404, {"Message": f"unknown admin call {method} /_sandbox/{'/'.join(parts)}"}
