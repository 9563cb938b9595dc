"""The tap's errors, one class per idea. Every message is safe to log: no key, no patient data."""

from __future__ import annotations


class CCError(Exception):
    """Base of the tap's errors."""


class AuthError(CCError):
    """401/403: the key was refused. Fatal for the run."""


class HostUnreachable(CCError):
    """No connection to a host that never answered: refused, or its name does not resolve.

    Fatal for the run: the host is wrong or down, and retrying only delays saying so.
    """


class EndpointUnavailable(CCError):
    """404 or 501: the endpoint (or, on a child path, the parent) does not exist.

    Attributes:
        status: The HTTP status.
        path: What answered it: a request path, or a description such as ``studies listing``.
    """

    def __init__(self, message: str, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class BadRequest(CCError):
    """400: the server rejected the query (for example a datetime literal format)."""


class RequestFailed(CCError):
    """A request that kept failing after every retry, or failed in a way retries cannot fix."""
