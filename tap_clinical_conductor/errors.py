"""The tap's errors, one class per idea. Every message is safe to log: no key, no patient data.

Each class knows the fix a user can apply (``fix``); a run that ends on one of them ends on
``fatal_line()``, the cause and the fix in one line.
"""

from __future__ import annotations


class CCError(Exception):
    """Base of the tap's errors."""

    #: What the user can do about it, appended to the message in ``fatal_line``.
    fix: str = ""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        if fix is not None:
            self.fix = fix

    def fatal_line(self) -> str:
        """The cause and the fix, in one line."""
        message = " ".join(str(self).split())
        return f"{message} {self.fix}" if self.fix else message


class AuthError(CCError):
    """401/403: the key was refused. Fatal for the run."""

    fix = "Check `api_key` and `api_key_header`."


class HostUnreachable(CCError):
    """No connection to a host that never answered: refused, or its name does not resolve.

    Fatal for the run: the host is wrong or down, and retrying only delays saying so.
    """

    fix = "Check api_url and the network (DNS, VPN, proxy, firewall)."


class EndpointUnavailable(CCError):
    """404 or 501: the endpoint (or, on a child path, the parent) does not exist.

    Attributes:
        status: The HTTP status.
        path: What answered it: a request path, or a description such as ``studies listing``.
    """

    fix = "Check api_url: it should end at the tenant's API root (for example .../CCSWeb)."

    def __init__(self, message: str, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class BadRequest(CCError):
    """400: the server rejected the query (for example a datetime literal format)."""

    fix = "Check filter_datetime_format and change_field_overrides."


class RequestFailed(CCError):
    """A request that kept failing after every retry, or failed in a way retries cannot fix."""

    fix = (
        "Run again later; if it persists, check the tenant's health, or raise max_retries "
        "and request_timeout_seconds."
    )
