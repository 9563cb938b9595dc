"""Print the requests of one run, per stream and per reason, and the sweep period they give.

    tap-clinical-conductor-plan --config config.json [--catalog c.json] [--state s.json] [--json]
        [--state-out next.json]

Top-level streams: ``$count`` where the endpoint reports one, else an id listing. Per-parent
streams: the run's own parent listings and activity signals (``selection``), then the parents one
run reads for each reason (new, changed, live, sweep) within ``max_requests_per_run`` and
``max_run_minutes``, and the sweep period that gives, in runs. Without ``--state`` it plans a
steady daily run: every parent read before, the last run a day ago. ``--state-out`` writes the
state that run leaves if every planned read succeeds, so the next day can be planned from it.
No child is read.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import typing as t

from tap_clinical_conductor.catalogue import BY_NAME, Endpoint, Kind
from tap_clinical_conductor.errors import CCError, EndpointUnavailable
from tap_clinical_conductor.selection import DAY_SECONDS, REASONS, STATE_KEY, Peer, SweepState
from tap_clinical_conductor.tap import TapClinicalConductor
from tap_clinical_conductor.tenant import Tenant


def count_rows(tenant: Tenant, endpoint: Endpoint, path: str) -> int | None:
    """Rows behind ``path``: the server's ``$count``, or an id listing when it gives none."""
    page = tenant.client.get_page(path, {"$count": "true", "$top": 1})
    if page.count is not None:
        return page.count
    if endpoint.kind is Kind.TOP and endpoint.odata and not endpoint.id_from:
        return len(tenant.listing.ids(endpoint))  # the same listing as a sync
    return None


#: Requests a second the summary converts to hours at (the API's usual limits).
RATES = (5, 8)


def plan(
    tap: TapClinicalConductor,
    state: t.Mapping[str, t.Any] | None = None,
    state_out: dict[str, t.Any] | None = None,
) -> list[dict[str, t.Any]]:
    """One row per selected stream, plus one for listings and signals: requests by reason.

    ``state_out``: filled with the state the run would leave if every planned read succeeded.
    """
    tenant = tap.tenant
    settings = tenant.settings
    page_size = settings.page_size
    rows_out: list[dict[str, t.Any]] = []
    per_parent: list[Endpoint] = []
    top_requests = 0
    before = tenant.client.counters["requests"]
    for name, stream in tap.streams.items():
        if not stream.selected:
            continue
        endpoint = BY_NAME[name]
        path = endpoint.collection_path(settings.prefer_top_level)
        if path is None:
            per_parent.append(endpoint)
            continue
        row: dict[str, t.Any] = {"stream": name, "kind": endpoint.kind.value}
        try:
            rows = count_rows(tenant, endpoint, path) if endpoint.odata else None
            requests = max(1, math.ceil((rows or 0) / page_size)) if endpoint.odata else 1
            row.update(rows=rows, requests=requests)
        except EndpointUnavailable as exc:
            row.update(requests=1, note=f"HTTP {exc.status}: skipped at sync")
        top_requests += row["requests"]
        rows_out.append(row)
    # Counting is the plan's own work; the run reads those pages instead.
    counted = tenant.client.counters["requests"] - before
    before = tenant.client.counters["requests"]
    peers, probes = [], 0
    for endpoint in per_parent:
        peer, probed = _peer(tap, endpoint, state)
        peers.append(peer)
        probes += probed
    forecast = tenant.parents.forecast(peers, top_requests - counted - probes)
    listing_requests = tenant.client.counters["requests"] - before - probes
    if peers:
        rows_out.append(
            {"stream": "(parent listings, signals)", "kind": "top", "requests": listing_requests}
        )
    for peer in peers:
        figures = forecast[peer.name]
        rows_out.append(
            {
                "stream": peer.name,
                "kind": BY_NAME[peer.name].kind.value,
                "parents": figures["parents"],
                "requests": figures["requests"],
                "by_reason": figures["by_reason"],
                "sweep_period_days": figures.get("sweep_period_days"),
                **({"note": "HTTP 404/501: skipped at sync"} if peer.state.unavailable else {}),
            }
        )
    if state_out is not None:
        state_out.update(copy.deepcopy(dict(state or {})))
        bookmarks = state_out.setdefault("bookmarks", {})
        for peer in peers:
            after = tenant.parents.state_after(peer, forecast[peer.name]["requests"])
            bookmarks.setdefault(peer.name, {})[STATE_KEY] = after.dump()
    rate = settings.max_requests_per_second
    for row in rows_out:
        row["hours"] = round(row["requests"] / rate / 3600, 2)
    return rows_out


def _peer(
    tap: TapClinicalConductor, endpoint: Endpoint, state: t.Mapping[str, t.Any] | None
) -> tuple[Peer, int]:
    """The stream as a run would start it: its state, or a steady day's; probed for a 404.

    Returns:
        The stream, and the requests of the probe (the plan's own).
    """
    tenant = tap.tenant
    parent = endpoint.parent
    rows = tenant.listing.rows(parent)
    if state is not None:
        raw = state.get("bookmarks", {}).get(endpoint.name, {}).get(STATE_KEY)
        sweep = SweepState.load(raw)
    else:
        yesterday = tenant.parents.tenant_now() - DAY_SECONDS
        sweep = SweepState(
            read_to=rows.ids[-1] if len(rows.ids) else None,
            cycle_started_at=yesterday,
            changed_since=yesterday,
            last_run_at=yesterday,
        )
    before = tenant.client.counters["requests"]
    if len(rows.ids):
        first = rows.ids[0]
        path = endpoint.path.replace("{" + (endpoint.parent_key or "") + "}", str(first))
        try:
            tenant.client.get_page(path, {"$top": 1} if endpoint.odata else None)
        except EndpointUnavailable:
            sweep.unavailable = tenant.listing.exists(parent, first)
    return Peer(endpoint.name, parent, sweep), tenant.client.counters["requests"] - before


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--catalog")
    parser.add_argument("--state", help="a Singer state (default: plan a steady daily run)")
    parser.add_argument("--json", action="store_true", help="one JSON object per stream")
    parser.add_argument(
        "--state-out",
        help="write the state the planned run leaves if every read succeeds (plan the next day)",
    )
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    catalog = None
    if args.catalog:
        with open(args.catalog, encoding="utf-8") as handle:
            catalog = json.load(handle)
    state = None
    if args.state:
        with open(args.state, encoding="utf-8") as handle:
            state = json.load(handle)
    tap = TapClinicalConductor(config=config, catalog=catalog, setup_mapper=False)
    after: dict[str, t.Any] = {}
    try:
        rows = plan(tap, state, after if args.state_out else None)
    except CCError as exc:
        print(f"error: {exc.fatal_line()}", file=sys.stderr)
        return 2
    if args.state_out:
        with open(args.state_out, "w", encoding="utf-8") as handle:
            json.dump(after, handle)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print_table(rows, tap.tenant.settings.max_requests_per_second)
    return 0


def print_table(rows: list[dict[str, t.Any]], rate: float) -> None:
    """The plan as a table, with the run's totals and hours at the API's usual rates."""
    heads = ("stream", "kind", "size", *REASONS, "requests", "hours", "sweep days")
    print(f"{heads[0]:34} {heads[1]:14} " + " ".join(f"{h:>9}" for h in heads[2:]))
    for row in rows:
        size = row.get("rows", row.get("parents"))
        reasons = row.get("by_reason", {})
        cells = [
            size if size is not None else "",
            *(reasons.get(r, "") for r in REASONS),
            row["requests"],
            row["hours"],
            row.get("sweep_period_days") or "",
        ]
        line = f"{row['stream']:34} {row['kind']:14} " + " ".join(f"{c!s:>9}" for c in cells)
        print(f"{line} {row.get('note', '')}".rstrip())
    total = sum(r["requests"] for r in rows)
    sweep = sum(r.get("by_reason", {}).get("sweep", 0) for r in rows)
    hours = ", ".join(f"{total / r / 3600:.1f} h at {r}/s" for r in RATES)
    print(f"one run: {total} requests ({hours}; {total / rate / 3600:.1f} h at {rate:g}/s)")
    print(f"not the sweep: {total - sweep} requests; the sweep: {sweep}")


if __name__ == "__main__":
    sys.exit(main())
