"""Format flags: libvirt's ``VIR_DOMAIN_XML_*`` (``virDomainXMLFlags``), same values."""

from __future__ import annotations

import enum

__all__ = ["FormatFlag"]


class FormatFlag(enum.IntFlag):
    """What :func:`~migrator.domain.format_domain` writes.

    ``SECURE`` keeps passwords; ``INACTIVE`` leaves out live data; ``UPDATE_CPU`` expands a
    host-model CPU into the host's concrete model; ``MIGRATABLE`` writes the canonical form
    (:func:`~migrator.domain.migratable`), without live data, generated aliases and the
    devices a machine has anyway.
    """

    SECURE = 1 << 0
    INACTIVE = 1 << 1
    UPDATE_CPU = 1 << 2
    MIGRATABLE = 1 << 3
