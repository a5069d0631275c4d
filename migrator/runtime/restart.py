"""What a host does when its daemon starts again: find its running guests and resolve every
half-done migration job with libvirt's recovery table."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from migrator.phases import Recovery
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import Host
from migrator.runtime.records import JobSide
from migrator.runtime.source import SourceSide

log = logging.getLogger("migrator.restart")


@dataclass(frozen=True)
class Resolved:
    """One job resolved at start: the guest, the side, and the decision taken."""

    domain: str
    side: JobSide
    recovery: Recovery


async def reattach(
    host: Host, *, source: SourceSide, destination: DestinationSide
) -> list[Resolved]:
    """Reconnect to the guests ``host`` runs and resolve its half-done jobs."""
    for name, domain in {**host.definitions, **host.live}.items():
        if name not in host.guests:
            instance = await host.driver.attach(domain)
            if instance is not None:
                host.add_guest(domain, instance)
    resolved = []
    for name in host.status.names():
        record = host.status.load(name)
        if record is None:
            continue
        side = source if record.side is JobSide.SOURCE else destination
        recovery = await side.adopt(record)
        log.info(
            "resolved %s job of %s in phase %s: %s",
            record.side.value,
            name,
            record.phase,
            [action.name for action in recovery.actions] or "nothing to do",
        )
        resolved.append(Resolved(domain=name, side=record.side, recovery=recovery))
    return resolved
