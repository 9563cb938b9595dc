"""``cc-sandbox serve``: run a fake Clinical Conductor tenant from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from cc_sandbox.faults import FAULT_KINDS
from cc_sandbox.odata import DATETIME_FORMS


def _override(text: str) -> tuple[str, str, Any]:
    """Parse ``NAME:key=value`` (value as JSON when it parses, else a string)."""
    try:
        name, setting = text.split(":", 1)
        key, raw = setting.split("=", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME:key=value, got {text!r}") from None
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, key, value


def _fault(text: str) -> tuple[str, float]:
    kind, _, rate = text.partition("=")
    if kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"fault kind must be one of {FAULT_KINDS}")
    return kind, float(rate)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="cc-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a fake tenant until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument("--scale", type=float, default=0.001)
    serve.add_argument("--profile", choices=("spec", "plan"), default="spec")
    serve.add_argument("--api-key", default="sandbox-key")
    serve.add_argument("--api-key-header", default="CCAPIKey")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--rate-limit", type=float, default=None, help="requests/s, whole server")
    serve.add_argument("--latency-ms", type=float, default=0.0)
    serve.add_argument("--jitter-ms", type=float, default=0.0)
    serve.add_argument("--skip-latency-ms", type=float, default=0.0,
                       help="extra ms per 1000 rows of $skip")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="spread over all kinds")
    serve.add_argument("--fault", type=_fault, action="append", default=[],
                       metavar="KIND=RATE", help=f"one of {', '.join(FAULT_KINDS)}")
    serve.add_argument("--slow-seconds", type=float, default=3.0)
    serve.add_argument("--tenant-timezone", default="America/New_York")
    serve.add_argument("--filter-datetime-format", choices=list(DATETIME_FORMS), default=None)
    serve.add_argument("--override", type=_override, action="append", default=[],
                       metavar="NAME:key=value",
                       help="e.g. patients:shape=pageresult, studies:ignores_skip=true")
    serve.add_argument("--pretty", action="store_true", help="serve indented, multi-line JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cc-sandbox`` console script."""
    args = build_parser().parse_args(argv)
    from cc_sandbox.sandbox import Sandbox  # generating data is the slow part; parse args first

    overrides: dict[str, dict[str, Any]] = {}
    for name, key, value in args.override:
        overrides.setdefault(name, {})[key] = value
    sandbox = Sandbox(
        scale=args.scale,
        profile=args.profile,
        api_key=args.api_key,
        seed=args.seed,
        rate_limit=args.rate_limit,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        faults=dict(args.fault),
        overrides=overrides,
        api_key_header=args.api_key_header,
        tenant_timezone=args.tenant_timezone,
        filter_datetime_format=args.filter_datetime_format,
        port=args.port,
        host=args.host,
        jitter_ms=args.jitter_ms,
        skip_latency_ms=args.skip_latency_ms,
        slow_seconds=args.slow_seconds,
        pretty=args.pretty,
    )
    sandbox.start()
    print(f"cc-sandbox listening on {sandbox.base_url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
