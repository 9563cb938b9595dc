"""HTTP access to a Clinical Conductor tenant: one client shared by every stream and worker.

Streams never talk to ``requests`` directly. The client owns the rate limit (one token bucket for
the whole tap, so parallel workers together stay under the tenant's limit), retries with backoff,
``Retry-After``, the mapping of HTTP statuses to the tap's error policy, and the rule that neither
the API key nor response bodies (patient data) reach a log line or an error message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
import typing as t
from collections import Counter
from urllib.parse import quote, urljoin, urlsplit

import msgspec
import requests
import urllib3

from tap_clinical_conductor.errors import (
    AuthError,
    BadRequest,
    EndpointUnavailable,
    HostUnreachable,
    RequestFailed,
)
from tap_clinical_conductor.responses import Page, error_message, error_text, parse_body
from tap_clinical_conductor.settings import MAX_BACKOFF_SECONDS, MAX_THROTTLED_RETRIES, Settings

LOGGER = logging.getLogger("tap_clinical_conductor")

_TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})
USER_AGENT = "tap-clinical-conductor"
#: Redirects followed within the tenant's own scheme, host and port.
MAX_REDIRECTS = 5
#: Quick retries of a refused connection or unresolved name while the tenant has never answered:
#: the host is wrong or down, and the full backoff would only delay saying so.
FIRST_CONTACT_RETRIES = 2
FIRST_CONTACT_WAIT_SECONDS = 0.5


class RateLimiter:
    """A token bucket shared by every thread; a 429 pauses everyone.

    Capacity is one token: requests are paced evenly instead of bursting, so a server-side bucket
    of the same rate never sees more than it allows.
    """

    def __init__(self, rate: float | None) -> None:
        self.rate = rate if rate and rate > 0 else None
        self._tokens = 1.0
        self._last = time.monotonic()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until a request may be sent."""
        while True:
            with self._lock:
                now = time.monotonic()
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif self.rate is None:
                    return
                else:
                    self._tokens = min(1.0, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        return
                    wait = (1.0 - self._tokens) / self.rate
            time.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Stop every worker for ``seconds`` (the server said it is overloaded)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
            self._tokens = 0.0


class CCClient:
    """Thread-safe GET client for the CC REST API."""

    def __init__(self, settings: Settings, seed: int | None = None) -> None:
        self.settings = settings
        self.base_url = settings.api_url.rstrip("/")
        self.limiter = RateLimiter(settings.max_requests_per_second)
        self.counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._local = threading.local()
        self._random = random.Random(seed)
        #: The tenant answered once in this run: later connection failures are transient.
        self._answered = False
        #: The ``Date`` header of the latest answer: the tenant's clock, not this machine's.
        self._server_date: str | None = None
        self._first_server_date: str | None = None

    # -- plumbing ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(
                {
                    self.settings.api_key_header: self.settings.api_key,
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                }
            )
            # requests reads the proxy and CA bundle variables again on every request, a
            # measurable cost per page. Every request goes to one host, so the session resolves
            # them once (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...).
            env = session.merge_environment_settings(self.base_url, {}, None, None, None)
            session.proxies.update(env["proxies"])
            session.verify = env["verify"]
            session.trust_env = False
            self._local.session = session
        return session

    def count(self, key: str, n: int = 1) -> None:
        """Add to a named counter (requests, retries by reason, 429s)."""
        with self._counter_lock:
            self.counters[key] += n

    def url(self, path: str, params: t.Mapping[str, object] | None = None) -> str:
        """Absolute URL. OData options keep their ``$`` and quotes readable in logs."""
        url = self.base_url + path
        if params:
            query = "&".join(
                f"{k}={quote(str(v), safe=chr(39) + '(),:$')}" for k, v in params.items()
            )
            url = f"{url}?{query}"
        return url

    def server_time(self, *, first: bool = False) -> dt.datetime | None:
        """The tenant's clock as its latest answer's ``Date`` header gave it (``None``: no header).

        ``first``: as the run's first answer gave it (when the run started, on the tenant's
        clock). Selection's "today" comes from here, so that a skewed local clock changes nothing.
        """
        value = self._first_server_date if first else self._server_date
        if value is None:
            return None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)

    def redact(self, text: str) -> str:
        """Remove the key from a message, however it got there."""
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    def _backoff(self, attempt: int) -> float:
        ceiling = min(MAX_BACKOFF_SECONDS, self.settings.backoff_base_seconds * 2.0**attempt)
        with self._counter_lock:
            return ceiling * (0.5 + self._random.random() / 2)

    # -- the request ---------------------------------------------------------------------------

    def get_page(
        self, path: str, params: t.Mapping[str, object] | None = None, *, single: bool = False
    ) -> Page:
        """GET one page, retrying what retries can fix.

        ``single``: the endpoint answers one object. Anywhere else a lone object (CC answers some
        errors as HTTP 200 with ``{"Message": ...}``) is not a page of records: it is retried,
        then fails.

        Raises:
            AuthError: 401/403.
            EndpointUnavailable: 404/501.
            BadRequest: 400.
            RequestFailed: Retries exhausted, or another client error.
        """
        url = self.url(path, params)
        shown = self.redact(url.removeprefix(self.base_url))
        attempt = 0
        throttled = 0
        while True:
            self.limiter.acquire()
            self.count("requests")
            try:
                # stream=True and one raw read: requests' chunked `.content` costs as much CPU
                # as the tap spends on the page's records (README, "Measured").
                response = self._get_same_host(url, shown)
                try:
                    problem = self._check(response, path, shown)
                    if problem is None:
                        return self._decode(response, _read_body(response), shown, single=single)
                finally:
                    response.close()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.HTTPError,
            ) as exc:
                cause = _connect_failure(exc)
                if cause is not None and not self._answered:
                    attempt += 1
                    self.count("retries")
                    if attempt > min(FIRST_CONTACT_RETRIES, self.settings.max_retries):
                        raise HostUnreachable(self._unreachable(cause, attempt)) from None
                    LOGGER.debug("GET %s: %s; quick retry %d", shown, cause, attempt)
                    time.sleep(FIRST_CONTACT_WAIT_SECONDS)
                    continue
                problem = _describe_network_error(exc)
            except _Retryable as exc:
                problem = str(exc)
            except _Throttled as exc:
                throttled += 1
                self.count("throttled_429")
                if throttled > MAX_THROTTLED_RETRIES:
                    raise RequestFailed(
                        f"GET {shown}: still HTTP 429 after {throttled} waits"
                    ) from None
                wait = exc.retry_after if exc.retry_after is not None else self._backoff(throttled)
                LOGGER.warning("HTTP 429 on GET %s; every worker waits %.1fs", shown, wait)
                self.limiter.pause(wait)
                continue
            attempt += 1
            self.count("retries")
            if attempt > self.settings.max_retries:
                raise RequestFailed(
                    self.redact(f"GET {shown} failed after {attempt} attempts: {problem}")
                )
            wait = self._backoff(attempt)
            LOGGER.warning(
                "GET %s: %s; retry %d/%d in %.1fs",
                shown,
                problem,
                attempt,
                self.settings.max_retries,
                wait,
            )
            time.sleep(wait)

    def _get_same_host(self, url: str, shown: str) -> requests.Response:
        """GET ``url``, following redirects only within the tenant's scheme, host and port.

        requests strips only ``Authorization`` on a redirect to another host: the key header
        would follow it. A redirect elsewhere fails instead, and the key is never sent there.
        """
        for _ in range(MAX_REDIRECTS + 1):
            response = self._session().get(
                url,
                timeout=self.settings.request_timeout_seconds,
                stream=True,
                allow_redirects=False,
            )
            self._answered = True
            self._server_date = response.headers.get("Date") or self._server_date
            if self._first_server_date is None:
                self._first_server_date = self._server_date
            location = response.headers.get("Location")
            if not response.is_redirect or location is None:
                return response
            response.close()
            target = urljoin(url, location)
            if _origin(target) != _origin(self.base_url):
                raise RequestFailed(
                    f"GET {shown} was redirected to another host ({urlsplit(target).netloc}); "
                    "the API key is never sent there.",
                    fix="Check api_url.",
                )
            url = target
        raise RequestFailed(f"GET {shown}: more than {MAX_REDIRECTS} redirects")

    def _unreachable(self, cause: str, attempts: int) -> str:
        """Host and port only: ``api_url`` could carry credentials."""
        parts = urlsplit(self.base_url)
        host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        return (
            f"Unreachable tenant: cannot connect to the host {self.redact(host)} "
            f"({cause}, {attempts} attempts)."
        )

    def _check(self, response: requests.Response, path: str, shown: str) -> str | None:
        status = response.status_code
        if status == 200:
            return None
        if status in (401, 403):
            raise AuthError(
                f"The API refused the key (HTTP {status}) on GET {shown} "
                f"(api_key_header is {self.settings.api_key_header!r})."
            )
        if status in (404, 501):
            raise EndpointUnavailable(f"HTTP {status} on GET {shown}", status, path)
        if status == 429:
            raise _Throttled(_retry_after(response.headers.get("Retry-After")))
        if status in _TRANSIENT_STATUSES:
            raise _Retryable(f"HTTP {status}")
        if status == 400:
            raise BadRequest(self.redact(f"HTTP 400 on GET {shown}: {_error_excerpt(response)}"))
        raise RequestFailed(
            self.redact(f"HTTP {status} on GET {shown}: {_error_excerpt(response)}")
        )

    def _decode(
        self, response: requests.Response, body: bytes, shown: str, *, single: bool
    ) -> Page:
        kind = response.headers.get("Content-Type", "")
        if "html" in kind.lower() or body.lstrip()[:1] == b"<":
            raise _Retryable(f"an HTML page instead of JSON ({len(body)} bytes)")
        try:
            page = parse_body(body)
        except msgspec.DecodeError:
            raise _Retryable(f"invalid or truncated JSON ({len(body)} bytes)") from None
        except RequestFailed as exc:
            raise RequestFailed(f"GET {shown}: {exc}") from None
        if page.lone and not single:
            message = error_message(page)
            raise _Retryable(
                f"HTTP 200 with an error object instead of records ({message!r})"
                if message is not None
                else "HTTP 200 with one JSON object instead of a list of records"
            )
        return page


class _Retryable(Exception):
    pass


class _Throttled(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("HTTP 429")
        self.retry_after = retry_after


def _read_body(response: requests.Response) -> bytes:
    """The whole body in one read; a short body raises (urllib3 enforces Content-Length)."""
    body = response.raw.read(decode_content=True)
    return body if isinstance(body, bytes) else b""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_excerpt(response: requests.Response) -> str:
    """A short description of an error body: the server's message, never record data."""
    try:
        payload = response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        return f"{kind}, {len(response.content)} bytes"
    return error_text(payload) or f"JSON error body, {len(response.content)} bytes"


def _connect_failure(exc: Exception) -> str | None:
    """Why no connection could be opened (refused, name unknown), or None for other failures."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "the name does not resolve"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "connection refused" if "refused" in str(reason).lower() else "no route to it"
    return None


def _describe_network_error(exc: Exception) -> str:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    text = str(exc)
    if "IncompleteRead" in text or "Connection broken" in text:
        return "body cut short"
    if "Connection refused" in text or "Failed to resolve" in text or "Name or service" in text:
        return "cannot connect to the host"
    if "reset" in text.lower() or "aborted" in text.lower():
        return "connection reset"
    return f"connection error ({type(exc).__name__})"
