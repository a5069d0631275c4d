"""Saving, applying and restoring QEMU's migration parameters around a job
(libvirt's ``qemuMigrationParamsCheck/Apply/Reset``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import params
from migrator.drivers.base import TLS_CREDENTIALS_ID, Instance
from params import Param, ParamSet, Side
from params.qmp import CapabilityState


async def save_originals(instance: Instance) -> ParamSet:
    """QEMU's migration parameters before the job changes any."""
    return params.from_qmp_query(await instance.query_parameters())


def with_tls(pset: ParamSet, *, enabled: bool, destination_host: str = "") -> ParamSet:
    """``pset`` with QEMU's TLS parameters as libvirt's EnableTLS and DisableTLS set them.

    Enabled, ``tls-creds`` names this side's credentials and ``tls-hostname`` is the
    ``tls.destination`` parameter, else ``destination_host``: on the source, the host of the
    destination's incoming URI, which the destination's certificate must name (QEMU, handed
    a connection, knows no host name of its own); "" on the destination. Disabled, both are
    "", so that nothing left from an earlier job applies.

    Raises:
        ParamsError: a value the table refuses (never for a valid ``pset``).
    """
    creds = hostname = ""
    if enabled:
        creds = TLS_CREDENTIALS_ID
        given = pset.get(Param.TLS_HOSTNAME)
        hostname = given if isinstance(given, str) and given else destination_host
    return pset.with_value(Param.TLS_CREDS, creds).with_value(Param.TLS_HOSTNAME, hostname)


async def apply_params(
    instance: Instance,
    pset: ParamSet,
    *,
    side: Side,
    remote_caps: Iterable[str] | None,
    postcopy_resume: bool = False,
) -> None:
    """Set every supported capability explicitly, then the job's parameters. On post-copy
    resume, capabilities stay as they are and only the resume parameters are re-applied.

    Raises:
        ParamsError: a requested capability is not supported by this QEMU.
        DriverError: QEMU refused a setting.
    """
    if not postcopy_resume:
        current = await instance.capability_states()
        capabilities = params.to_qmp_capabilities(
            pset, supported=current, remote_supported=remote_caps, side=side
        )
        await _set_changed(instance, capabilities, current=current)
    arguments = params.to_qmp_parameters(pset, postcopy_resume=postcopy_resume)
    if arguments:
        await instance.set_parameters(arguments)


async def restore_params(instance: Instance, originals: ParamSet) -> None:
    """Turn every capability off and put the original parameters back."""
    current = await instance.capability_states()
    await _set_changed(instance, params.reset_capabilities(supported=current), current=current)
    arguments = params.to_qmp_parameters(originals)
    if arguments:
        await instance.set_parameters(arguments)


async def _set_changed(
    instance: Instance, capabilities: list[CapabilityState], *, current: Mapping[str, bool]
) -> None:
    """Bring every capability of ``capabilities`` to its state, sending only those whose
    state ``current`` differs in."""
    changes = params.capability_changes(capabilities, current=current)
    if changes:
        await instance.set_capabilities(changes)
