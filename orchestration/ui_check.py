"""``make ui-check``: headless Chromium opens the Dagster UI and checks what a person would look at.

Starts the stack of ``make orchestrate`` (two fake tenants, embedded PostgreSQL, ``dagster dev``)
with its own Dagster home and warehouse schemas (``ui_check``, ``ui_check_analytics``), or uses a
running UI (``--url``), materialises tenant site-a through the ``daily`` job (Meltano load, then
dbt), then, in Debian's Chromium driven by Playwright:

* the global asset lineage shows the groups meltano_staging -> dbt_staging -> snapshots -> marts,
  and a mart's lineage shows its staging table, dbt staging view and snapshot by name;
* the run's page and the runs list show the last run as succeeded;
* screenshots of both graphs, the run and the runs list go to ``--out``
  (``.dagster/ui-check/screenshots``).

Exits non-zero, naming what it did not find, when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from orchestration import dev

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Asset groups of the global lineage: Meltano's staging tables, then dbt's layers.
GROUPS = ("meltano_staging", "dbt_staging", "snapshots", "marts")
#: A mart whose upstream lineage must show the staging table, dbt view and snapshot it reads.
LINEAGE_OF = "dim_studies_history"
EXPECTED_ASSETS = ("dim_studies_staging", "stg_cc__studies", "snap_studies", LINEAGE_OF)

RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"""


def materialise(url: str, tenant: str, timeout: float = 1200) -> tuple[str, str]:
    """Run the ``daily`` job for ``tenant``; its run id and final status."""
    run_id = dev.launch(url, tenant)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dev.graphql(url, RUN, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return run_id, status
        time.sleep(2)
    raise TimeoutError(f"run {run_id} not finished after {timeout:.0f} s")


def browse(url: str, run_id: str, out: Path) -> list[str]:
    """The browser checks; returns the problems found (empty: all passed)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000},
        )
        page = browser.new_page()
        page.set_default_timeout(60_000)

        def shows(name: str) -> bool:
            try:
                page.get_by_text(name, exact=True).first.wait_for()
                return True
            except Exception:  # noqa: BLE001 - Playwright's timeout: report it, check the rest
                return False

        # The global lineage: Meltano's staging group upstream of dbt's groups.
        page.goto(f"{url}/asset-groups")
        problems += [f"the asset graph has no group {g}" for g in GROUPS if not shows(g)]
        with contextlib.suppress(Exception):  # the groups' status chips, for the screenshot
            page.get_by_text("fetching statuses").first.wait_for(state="hidden")
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "asset-graph.png"))

        # One mart's lineage, asset by asset, back to its staging table.
        page.goto(f"{url}/assets/{LINEAGE_OF}?view=lineage&lineageScope=upstream&lineageDepth=4")
        problems += [
            f"the lineage of {LINEAGE_OF} does not show {name}"
            for name in EXPECTED_ASSETS
            if not shows(name)
        ]
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / f"lineage-{LINEAGE_OF}.png"))

        # The run: its page shows Success; the runs list has it first.
        page.goto(f"{url}/runs/{run_id}")
        if not shows("Success"):
            problems.append(f"the page of run {run_id} does not show Success")
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "run.png"))
        page.goto(f"{url}/runs")
        if shows(run_id[:8]):
            newest = page.locator('a[href^="/runs/"]').first.inner_text().strip()
            if newest != run_id[:8]:
                problems.append(f"the runs list's newest run is {newest}, not {run_id[:8]}")
            if not shows("Success"):
                problems.append("the runs list shows no succeeded run")
        else:
            problems.append(f"the runs list does not show run {run_id[:8]}")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "runs.png"))
        browser.close()
    return problems


@contextlib.contextmanager
def ui(url: str | None, port: int) -> Iterator[str]:
    """The given UI, or a fresh stack of ``make orchestrate``."""
    if url:
        yield url.rstrip("/")
        return
    home = dev.HOME / "ui-check"
    with dev.stack(home, port=port, schema="ui_check", dbt_schema="ui_check_analytics") as (
        started_url,
        _tenants,
        _warehouse,
        _proc,
    ):
        yield started_url


def main(argv: list[str] | None = None) -> int:
    """Run the checks; 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running Dagster UI (default: start one)")
    parser.add_argument("--port", type=int, default=0, help="port of the UI started here")
    parser.add_argument("--out", type=Path, default=dev.HOME / "ui-check" / "screenshots")
    parser.add_argument("--tenant", default="site-a")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(
            f"{CHROMIUM} not found: apt-get update && apt-get install -y chromium", file=sys.stderr
        )
        return 2
    started = time.monotonic()
    with ui(args.url, args.port or dev.free_port()) as url:
        print(f"Dagster UI at {url} ({time.monotonic() - started:.0f} s)", flush=True)
        run_id, status = materialise(url, args.tenant)
        print(
            f"daily job of {args.tenant}: run {run_id} {status} "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        problems = browse(url, run_id, args.out)
    if status != "SUCCESS":
        problems.insert(0, f"run {run_id} ended {status}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    print(f"screenshots: {', '.join(str(p) for p in sorted(args.out.glob('*.png')))}")
    print("ui-check: " + ("all checks passed" if not problems else f"{len(problems)} failed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
