"""The client of the migrator daemon.

URIs: ``migrator+unix:///ABS/PATH`` (the daemon's unix socket) and
``migrator+tls://HOST:PORT`` (mutual TLS; the client presents the certificate in its
``tls_dir``, laid out as :mod:`transport.certdir` writes it, and checks that the daemon's
certificate names HOST). A URI of None means ``$MIGRATOR_DEFAULT_URI``; a ``tls_dir`` of
None means ``$MIGRATOR_TLS_DIR``.

- :class:`Client`: every call is a coroutine; :class:`SyncClient`: the same, blocking.
- Results are frozen records (:mod:`migrator.client.types`), each with ``to_json()``.
- Every failure is a :class:`ClientError` with the daemon's code (``no-domain``, ``busy``,
  ``invalid-state``, ``invalid-argument``, ``migration-failed``) or ``unreachable``.

The RPC methods and their parameters are documented in ``docs/api.md``.
"""

from cookies import JobOperation, JobStatistics
from migrator.client.client import Client
from migrator.client.errors import ClientError
from migrator.client.sync import SyncClient
from migrator.client.types import (
    DomainInfo,
    DomainState,
    DomainSummary,
    Event,
    HostInfo,
    JobEvent,
    JobInfo,
    JobType,
    LifecycleEvent,
    LifecycleKind,
)
from migrator.client.uri import parse_uri, tls_uri, unix_uri

__all__ = [
    "Client",
    "ClientError",
    "DomainInfo",
    "DomainState",
    "DomainSummary",
    "Event",
    "HostInfo",
    "JobEvent",
    "JobInfo",
    "JobOperation",
    "JobStatistics",
    "JobType",
    "LifecycleEvent",
    "LifecycleKind",
    "SyncClient",
    "parse_uri",
    "tls_uri",
    "unix_uri",
]
