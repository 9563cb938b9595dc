"""A fake Clinical Conductor tenant: a real HTTP server for tests, demos and benchmarks.

Nothing happens at import: data is generated when a :class:`Tenant` (or :class:`Sandbox`) is
made. See ``cc_sandbox/README.md``.
"""

from cc_sandbox.model import Tenant
from cc_sandbox.sandbox import Sandbox

__all__ = ["Sandbox", "Tenant"]
