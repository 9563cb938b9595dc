"""HTTP access to a Clinical Conductor tenant: one client shared by every stream and worker.

Streams never talk to ``requests`` directly. The client owns the rate limit (one token bucket for
the whole tap, so parallel workers together stay under the tenant's limit), retries with backoff,
``Retry-After``, the mapping of HTTP statuses to the tap's error policy, and the rule that neither
the API key nor response bodies (patient data) reach a log line or an error message.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

import msgspec
import requests
import urllib3

LOGGER = logging.getLogger("tap_clinical_conductor")

_TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})
_MAX_THROTTLED_RETRIES = 30


class CCError(Exception):
    """Base of the tap's errors; messages are safe to log (no key, no patient data)."""


class AuthError(CCError):
    """401/403: the key was refused. Fatal for the run."""


class EndpointUnavailable(CCError):
    """404 or 501: the endpoint (or, on a child path, the parent) does not exist."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadRequest(CCError):
    """400: the server rejected the query (for example a datetime literal format)."""


class RequestFailed(CCError):
    """A request that kept failing after every retry, or failed in a way retries cannot fix."""


class Page:
    """One response, whatever its shape.

    Records stay undecoded (``msgspec.Raw``, slices of the body) until somebody asks: a stream
    reads only the few fields it needs and passes the rest through byte for byte, which is most of
    what makes the tap fast. ``items`` decodes them all on first use.

    Attributes:
        raw: The records' JSON, undecoded.
        body: The response body, when its records sit in a bare array or in a list under
            ``items_key`` of an object of scalars: a typed decoder can then read the keys of
            every record in one pass over it. ``None`` otherwise.
        items_key: The key of the records' list in ``body`` (``None`` for a bare array).
        next_link: The server's link to the next page, if it gave one.
        count: The total the server reported (``$count=true``), if any.
        has_nul: Whether the body contains an escaped NUL character somewhere.
    """

    __slots__ = ("_items", "body", "count", "has_nul", "items_key", "next_link", "raw")

    def __init__(
        self,
        items: list | None = None,
        next_link: str | None = None,
        count: int | None = None,
        has_nul: bool = False,
        *,
        raw: list[msgspec.Raw] | None = None,
        body: bytes | None = None,
        items_key: str | None = None,
    ) -> None:
        self._items = items
        self.raw = raw
        self.body = body
        self.items_key = items_key
        self.next_link = next_link
        self.count = count
        self.has_nul = has_nul

    @property
    def items(self) -> list:
        """The records as Python objects."""
        if self._items is None:
            self._items = [_ANY.decode(r) for r in self.raw or ()]
        return self._items

    def item(self, index: int) -> object:
        """One record as a Python object, without decoding the others."""
        if self._items is not None:
            return self._items[index]
        return _ANY.decode((self.raw or [])[index])

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else len(self.raw or ())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (self.items, self.next_link, self.count) == (
            other.items,
            other.next_link,
            other.count,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Page({len(self)} records, next_link={self.next_link!r}, count={self.count!r})"


_ANY = msgspec.json.Decoder()
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
#: Every shape CC uses in one pass: a bare array, or an object of scalars and the records' list.
_FLAT = msgspec.json.Decoder(
    list[msgspec.Raw] | dict[str, list[msgspec.Raw] | str | int | float | bool | None]
)
_SHAPES = (("items", "nextpagelink", "count"), ("value", "@odata.nextlink", "@odata.count"))


def parse_body(body: bytes) -> Page:
    """Accept a bare array, an ASP.NET ``PageResult`` or OData v4 JSON, in any key casing.

    The records stay undecoded. A lone object (``/instance/details``) is a page of one. A body
    spread over several lines is compacted first: records pass through to the target as they
    are, and a line break inside one would split its Singer message.

    Raises:
        msgspec.DecodeError: The body is not JSON (or is cut short).
        RequestFailed: The JSON is neither a list nor an object.
    """
    has_nul = b"\\u0000" in body
    if b"\n" in body or b"\r" in body:
        # JSON strings cannot hold raw line breaks: these are only whitespace between tokens.
        body = msgspec.json.format(body, indent=-1)
    top, one_pass = _decode_top(body)
    # Only a one-pass shape is left for a typed decoder to read again (`records.PageEncoder`).
    kept = body if one_pass else None
    if isinstance(top, list):
        return Page(raw=top, has_nul=has_nul, body=kept)
    keys = {k.lower(): k for k in top}
    for items_key, link_key, count_key in _SHAPES:
        records = top.get(keys.get(items_key, ""))
        if isinstance(records, list):
            link = top.get(keys.get(link_key, ""))
            count = top.get(keys.get(count_key, ""))
            return Page(
                raw=records,
                next_link=link if isinstance(link, str) else None,
                count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                has_nul=has_nul,
                body=kept,
                items_key=keys[items_key],
            )
    return Page(raw=[msgspec.Raw(body)], has_nul=has_nul)


def _decode_top(body: bytes) -> tuple[list | dict, bool]:
    """The body as a list of undecoded records, or an object whose lists are such lists.

    One pass when the object around the records holds only scalars (every CC shape); a second
    pass per value when something nested sits beside the records. The flag says which.

    Raises:
        msgspec.DecodeError: The body is not JSON.
        RequestFailed: The JSON is neither a list nor an object.
    """
    try:
        return _FLAT.decode(body), True
    except msgspec.ValidationError:
        pass
    try:
        top = _TOP.decode(body)  # a list always fits `_FLAT`: this is an object, or neither
    except msgspec.ValidationError:
        raise RequestFailed("unexpected JSON: neither a list nor an object") from None
    return {
        key: _RAW_LIST.decode(value) if bytes(value).lstrip()[:1] == b"[" else _ANY.decode(value)
        for key, value in top.items()
    }, False


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


@dataclass(frozen=True)
class ClientSettings:
    """What the client needs from the tap's config."""

    base_url: str
    api_key: str
    api_key_header: str = "CCAPIKey"
    timeout: float = 60.0
    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_requests_per_second: float | None = None
    user_agent: str = "tap-clinical-conductor"


class CCClient:
    """Thread-safe GET client for the CC REST API."""

    def __init__(self, settings: ClientSettings, seed: int | None = None) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.max_requests_per_second)
        self.counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._local = threading.local()
        self._random = random.Random(seed)

    # -- plumbing ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(
                {
                    self.settings.api_key_header: self.settings.api_key,
                    "Accept": "application/json",
                    "User-Agent": self.settings.user_agent,
                }
            )
            # requests reads the proxy and CA bundle variables again on every request, half a
            # millisecond of environment scanning per page. Every request goes to one host, so
            # the session resolves them once (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...).
            env = session.merge_environment_settings(self.settings.base_url, {}, None, None, None)
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
        url = self.settings.base_url.rstrip("/") + path
        if params:
            query = "&".join(
                f"{k}={quote(str(v), safe=chr(39) + '(),:$')}" for k, v in params.items()
            )
            url = f"{url}?{query}"
        return url

    def redact(self, text: str) -> str:
        """Remove the key from a message, however it got there."""
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        with self._counter_lock:
            return ceiling * (0.5 + self._random.random() / 2)

    # -- the request ---------------------------------------------------------------------------

    def get_page(self, path: str, params: t.Mapping[str, object] | None = None) -> Page:
        """GET one page, retrying what retries can fix.

        Raises:
            AuthError: 401/403.
            EndpointUnavailable: 404/501.
            BadRequest: 400.
            RequestFailed: Retries exhausted, or another client error.
        """
        url = self.url(path, params)
        shown = self.redact(url.removeprefix(self.settings.base_url.rstrip("/")))
        attempt = 0
        throttled = 0
        while True:
            self.limiter.acquire()
            self.count("requests")
            try:
                # stream=True and one raw read: requests' chunked `.content` costs 2 ms of CPU
                # per 600 kB page, as much as the tap spends on the page's records.
                response = self._session().get(url, timeout=self.settings.timeout, stream=True)
                try:
                    problem = self._check(response, shown)
                    if problem is None:
                        return self._decode(response, _read_body(response), shown)
                finally:
                    response.close()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.HTTPError,
            ) as exc:
                problem = _describe_network_error(exc)
            except _Retryable as exc:
                problem = str(exc)
            except _Throttled as exc:
                throttled += 1
                self.count("throttled_429")
                if throttled > _MAX_THROTTLED_RETRIES:
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

    def _check(self, response: requests.Response, shown: str) -> str | None:
        status = response.status_code
        if status == 200:
            return None
        if status in (401, 403):
            raise AuthError(
                f"The API refused the key (HTTP {status}) on GET {shown}. Check `api_key` and "
                f"`api_key_header` (currently {self.settings.api_key_header!r})."
            )
        if status in (404, 501):
            raise EndpointUnavailable(f"HTTP {status} on GET {shown}", status)
        if status == 429:
            raise _Throttled(_retry_after(response.headers.get("Retry-After")))
        if status in _TRANSIENT_STATUSES:
            raise _Retryable(f"HTTP {status}")
        if status == 400:
            raise BadRequest(self.redact(f"HTTP 400 on GET {shown}: {_error_excerpt(response)}"))
        raise RequestFailed(
            self.redact(f"HTTP {status} on GET {shown}: {_error_excerpt(response)}")
        )

    def _decode(self, response: requests.Response, body: bytes, shown: str) -> Page:
        kind = response.headers.get("Content-Type", "")
        if "html" in kind.lower() or body.lstrip()[:1] == b"<":
            raise _Retryable(f"an HTML page instead of JSON ({len(body)} bytes)")
        try:
            return parse_body(body)
        except msgspec.DecodeError:
            raise _Retryable(f"invalid or truncated JSON ({len(body)} bytes)") from None
        except RequestFailed as exc:
            raise RequestFailed(f"GET {shown}: {exc}") from None


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
    if isinstance(payload, dict):
        for key in ("Message", "message", "error", "ExceptionMessage"):
            value = payload.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str):
                return value[:200]
    return f"JSON error body, {len(response.content)} bytes"


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
