"""Print how many requests each selected stream needs, and how long that takes at the rate limit.

    tap-clinical-conductor-plan --config config.json [--catalog catalog.json] [--json]

It reads ``$count`` where the endpoint reports one and otherwise lists ids (the same keyset
listing a sync uses for parents), so a user sees before starting that a per-patient-visit stream
needs days at 5 requests a second.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import typing as t

from tap_clinical_conductor.catalogue import BY_NAME, Endpoint, Kind
from tap_clinical_conductor.errors import CCError, EndpointUnavailable
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


def plan(tap: TapClinicalConductor) -> list[dict[str, t.Any]]:
    """One row per selected stream: rows, requests, and hours at the configured rate."""
    tenant = tap.tenant
    settings = tenant.settings
    rate = settings.max_requests_per_second
    page_size = settings.page_size
    parents: dict[str, int | None] = {}
    rows_out = []
    for name, stream in tap.streams.items():
        if not stream.selected:
            continue
        endpoint = BY_NAME[name]
        row: dict[str, t.Any] = {"stream": name, "kind": endpoint.kind.value}
        try:
            path = endpoint.collection_path(settings.prefer_top_level)
            if path is not None:
                rows = count_rows(tenant, endpoint, path) if endpoint.odata else None
                requests = max(1, math.ceil((rows or 0) / page_size)) if endpoint.odata else 1
                row.update(rows=rows, requests=requests)
            else:
                parent = endpoint.parent
                if parent.name not in parents:
                    parents[parent.name] = count_rows(tenant, parent, parent.path)
                n = parents[parent.name] or 0
                row.update(parents=n, requests=n + math.ceil(n / page_size))
        except EndpointUnavailable as exc:
            row.update(requests=1, note=f"HTTP {exc.status}: skipped at sync")
        row["hours"] = round(row["requests"] / rate / 3600, 2)
        rows_out.append(row)
    return rows_out


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--catalog")
    parser.add_argument("--json", action="store_true", help="one JSON object per stream")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    catalog = None
    if args.catalog:
        with open(args.catalog, encoding="utf-8") as handle:
            catalog = json.load(handle)
    tap = TapClinicalConductor(config=config, catalog=catalog, setup_mapper=False)
    try:
        rows = plan(tap)
    except CCError as exc:
        print(f"error: {exc.fatal_line()}", file=sys.stderr)
        return 2
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    rate = tap.tenant.settings.max_requests_per_second
    print(f"{'stream':34} {'kind':14} {'rows/parents':>12} {'requests':>10} {'hours':>8}")
    for row in rows:
        size = row.get("rows", row.get("parents"))
        print(
            f"{row['stream']:34} {row['kind']:14} {size if size is not None else '?':>12} "
            f"{row['requests']:>10} {row['hours']:>8} {row.get('note', '')}"
        )
    total = sum(r["requests"] for r in rows)
    print(f"{'total':34} {'':14} {'':>12} {total:>10} {round(total / rate / 3600, 2):>8}")
    print(f"at {rate} requests/s; per-parent streams need one request per parent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
