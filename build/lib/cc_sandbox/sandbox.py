"""``Sandbox``: a fake CC tenant served over HTTP from a background thread."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from cc_sandbox.app import App, Config
from cc_sandbox.model import Tenant
from cc_sandbox.server import SandboxHTTPServer


class Sandbox:
    """A Clinical Conductor tenant on ``127.0.0.1``, for tests, demos and benchmarks.

    Usable as a context manager or with :meth:`start`/:meth:`stop`. All arguments but the data
    ones (``scale``, ``profile``, ``seed``, ``tenant_timezone``) can be changed later with
    :meth:`configure`.

    Args:
        scale: Fraction of the reference tenant's row counts.
        profile: ``spec`` or ``plan`` (see README, "Fidelity profiles").
        api_key: Key clients must send.
        seed: Seed of the data, faults and jitter.
        rate_limit: Requests per second for the whole server (token bucket), ``None`` for none.
        latency_ms: Base delay of every answer.
        fault_rate: Probability of a fault per request, spread over all kinds.
        faults: Probability per fault kind (``{"http_503": 0.1}``).
        overrides: Per-endpoint overrides (``{"patients": {"shape": "pageresult"}}``).
        api_key_header: Header carrying the key.
        tenant_timezone: Zone of the tenant's naive local datetimes.
        filter_datetime_format: Datetime literal form ``$filter`` accepts; ``None`` for the
            profile's default.
        port: Port to listen on; 0 picks a free one.
        host: Interface to listen on.
        **settings: Further :class:`~cc_sandbox.app.Config` settings (``jitter_ms``,
            ``skip_latency_ms``, ``slow_seconds``).
    """

    def __init__(
        self,
        scale: float = 0.001,
        profile: str = "spec",
        api_key: str = "sandbox-key",
        seed: int = 7,
        rate_limit: float | None = None,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        faults: dict[str, float] | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        api_key_header: str = "CCAPIKey",
        tenant_timezone: str = "America/New_York",
        filter_datetime_format: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        **settings: Any,
    ) -> None:
        self.tenant = Tenant(scale, seed, profile, tenant_timezone, overrides)
        config = Config(
            api_key=api_key,
            api_key_header=api_key_header,
            rate_limit=rate_limit,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            faults=dict(faults or {}),
            filter_datetime_format=filter_datetime_format,
            overrides=dict(overrides or {}),
            **settings,
        )
        self.app = App(self.tenant, config)
        self._address = (host, port)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        """Start serving in a daemon thread; returns ``self``."""
        if self._server is None:
            self._server = SandboxHTTPServer(self._address, self.app)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="cc-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's loop)."""
        if self._server is None:
            self._server = SandboxHTTPServer(self._address, self.app)
        self._server.serve_forever()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL a client configures: ``http://127.0.0.1:PORT/CCSWeb``."""
        return f"http://{self._address[0]}:{self.port}/CCSWeb"

    # ----------------------------------------------------------------------------- observing

    def truth(self, name: str) -> list[dict[str, Any]]:
        """Every record endpoint ``name`` serves now: ``[{"parent": {...}, "data": {...}}]``."""
        return self.tenant.truth(name)

    def stats(self) -> dict[str, Any]:
        """Request counters (see README, "Counters")."""
        return self.app.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self.app.stats.reset()

    # ------------------------------------------------------------------------------ steering

    def configure(self, **settings: Any) -> None:
        """Change settings while running (``rate_limit``, ``faults``, ``overrides``, ...)."""
        self.app.configure(**settings)

    def advance_clock(self, seconds: float) -> float:
        """Move the tenant clock forward; returns it (POSIX seconds)."""
        return self.tenant.advance_clock(seconds)

    def update(self, endpoint: str, n: int = 1, **kwargs: Any) -> list[int]:
        """Change ``n`` records (see :meth:`Tenant.update`); returns their ids."""
        return self.tenant.update(endpoint, n, **kwargs)

    def insert(self, endpoint: str, n: int = 1, **kwargs: Any) -> list[int]:
        """Add ``n`` records (see :meth:`Tenant.insert`); returns their ids."""
        return self.tenant.insert(endpoint, n, **kwargs)

    def delete(self, endpoint: str, n: int = 1, **kwargs: Any) -> list[int]:
        """Remove ``n`` records and their path children; returns their ids."""
        return self.tenant.delete(endpoint, n, **kwargs)

    def corrupt(self, endpoint: str, kind: str, n: int = 1, **kwargs: Any) -> list[int]:
        """Serve ``n`` records broken (see :meth:`Tenant.corrupt`); returns their ids."""
        return self.tenant.corrupt(endpoint, kind, n, **kwargs)

    def schedule(self, after_requests: int, action: str, endpoint: str, **kwargs: Any) -> int:
        """Mutate once ``after_requests`` more API requests are answered (mid-sync changes).

        Returns:
            The number of the API request before which the mutation runs.
        """
        return self.app.schedule(after_requests, action, endpoint, **kwargs)
